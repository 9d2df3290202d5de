"""warpinit's CPU kernels use the CPU's widest vectors whatever LLVM's tuning prefers; other Numba
code compiles as it would without warpinit. Read from the assembly of a subprocess compiled with an
Intel server tuning (which prefers 256-bit vectors), the host's features kept. The values drawn are
the same under every target: an AVX2-only one, one without F16C, an Intel tuning, the host's own.
A loop's lanes forced for one vector ISA (``cpu_jit(lanes=...)``) apply to that ISA's targets alone.
The sampler loops spill vectors to aligned stack slots; other code keeps its frames."""

import llvmlite.binding as ll
import pytest

from warpinit.bench import vector_width

IS_X86 = ll.get_process_triple().startswith("x86_64")
HAS_AVX512 = IS_X86 and "+avx512f" in ll.get_host_cpu_features().flatten().split(",")


@pytest.mark.skipif(not HAS_AVX512, reason="the host has no AVX-512")
def test_kernels_are_wide_under_an_intel_tuning_and_other_numba_code_is_not_changed():
    report = vector_width.run_child("sapphirerapids", vector_width.host_features(), parts=("span", "plain", "bits"))
    span = report["span"]
    assert span["zmm"] > span["ymm"] / 2  # the sampler loops run on zmm (before: a handful of zmm)
    assert span["vpmuludq"] > 0 and span["vpmullq"] == 0  # Philox's products are 32 x 32 -> 64 bits
    assert span["vpcompressq"] > 0  # the redraw pass's scan, eight elements a step
    assert report["bits"] == vector_width.drawn_digest()
    assert report["cpu_jit"]["zmm"] > 0
    assert report["plain njit"]["zmm"] == 0 and report["plain njit"]["ymm"] > 0  # the tuning's own choice


@pytest.mark.skipif(not IS_X86, reason="an x86-64 target")
def test_lanes_forced_for_avx512_apply_to_an_avx512_target_alone():
    # Compiled for an AVX-512 CPU, not run: any x86-64 host can check it.
    features = ",".join(f for f in vector_width.avx2_features().split(",") if not f.startswith("-avx512"))
    features += ",+avx512f,+avx512dq,+avx512bw,+avx512vl,+avx512cd"
    lanes = vector_width.run_child("sapphirerapids", features, parts=("lanes",))["lanes"]
    # Forced to 16 lanes, the float32 math of a loop that stores 16-bit values takes one zmm a
    # value (LLVM's own choice, by the 16-bit store, is another); the width forced for AVX2 is not
    # applied.
    forced = lanes["avx512: 16"]
    assert forced != lanes["default"] and forced["mulps zmm"] > 0 and forced["mulps ymm"] == forced["mulps xmm"] == 0
    assert lanes["avx2: 8"] == lanes["default"]


@pytest.fixture(scope="module")
def avx2_report():
    return vector_width.run_child("haswell", vector_width.avx2_features(),
                                  parts=("span", "half", "plain", "lanes", "bits"))


@pytest.mark.skipif(not IS_X86, reason="an x86-64 target")
def test_avx2_target_gets_256_bit_code(avx2_report):
    report = avx2_report
    assert report["cpu_jit"]["zmm"] == 0 and report["cpu_jit"]["ymm"] > 0
    assert report["span"]["zmm"] == 0 and report["span"]["vpcompressq"] == 0  # the scan packs by table
    lanes = report["lanes"]
    # Forced to 8 lanes, the loop's float32 math takes one ymm a value and nothing narrower; the
    # width forced for AVX-512 is not applied.
    forced = lanes["avx2: 8"]
    assert forced != lanes["default"] and forced["mulps ymm"] > 0 and forced["mulps xmm"] == forced["mulps zmm"] == 0
    assert lanes["avx512: 16"] == lanes["default"]
    assert report["half"]["vcvtps2ph"] > 0  # float16 outputs rounded by F16C's conversion
    assert report["bits"] == vector_width.drawn_digest()  # the same values as the host's code


@pytest.mark.skipif(not IS_X86, reason="an x86-64 target")
def test_float16_outputs_without_f16c_round_in_integer_steps_to_the_same_bits():
    report = vector_width.run_child("x86-64", vector_width.no_f16c_features(), parts=("half", "bits"))
    assert report["half"]["vcvtps2ph"] == 0
    assert report["bits"] == vector_width.drawn_digest()


@pytest.mark.skipif(not IS_X86, reason="an x86-64 target")
def test_kernels_spill_vectors_to_aligned_slots_and_other_numba_code_keeps_its_frames(avx2_report):
    # The sampler loops spill many vector registers; each of their functions realigns its frame to
    # STACK_ALIGNMENT bytes, so that the spills are aligned moves wherever it is called from. Only
    # functions compiled with aligned_stack=True realign.
    span = avx2_report["span"]
    spills = span["aligned spills"] + span["unaligned spills"]
    assert spills > 100 and span["aligned spills"] >= 0.95 * spills
    assert span["stack realigned"] > 0
    assert avx2_report["cpu_jit, aligned stack"]["stack realigned"] == 1
    assert avx2_report["cpu_jit"]["stack realigned"] == avx2_report["plain njit"]["stack realigned"] == 0
