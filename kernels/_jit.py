"""One source, two targets: how warpinit's shared math is compiled for the CPU and for CUDA.

warpinit's arithmetic (Philox rounds, bits-to-float conversion, the normal transform, 16-bit rounding)
is written once, as plain Python. ``shared`` compiles it with ``numba.njit(forceinline=True)`` for the
CPU kernels and remembers the source, so that ``cuda_twin`` can compile the very same code object with
``numba.cuda.jit(device=True, inline="always")``. Both targets inline, for different reasons: on the
CPU, LLVM's always-inline lets it vectorise a whole kernel loop (an opaque call inside the loop keeps
it scalar, four times slower), at a fraction of the compile time of Numba's IR-level inlining; for
CUDA, Numba's IR-level ``inline="always"`` is what lets ``compile_ptx`` work on a machine without a
driver (a non-inlined device function is linked through the driver).

A CUDA twin is the original code object with its global names rebound to the CUDA twins of the shared
functions it calls (``for_cuda``); kernels written against the CPU names run unchanged on a GPU and
in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``). In the simulator, device functions run as
Python on NumPy scalars, so the shared code casts every integer constant and keeps float constants as
NumPy scalars: NumPy's promotion rules and Numba's typing then agree, and simulator results match the
compiled CPU kernels.

Every CPU function of warpinit is compiled through ``cpu_jit``: Numba's nopython pipeline with the
NumPy error model, and with each function marked ``"prefer-vector-width"="512"`` for LLVM. LLVM's
tunings for Intel server CPUs (Skylake-X to Granite Rapids, Ice Lake) prefer 256-bit vectors even
where AVX-512 is present, and so leave the kernels on ymm registers; the attribute lifts that
preference for warpinit's functions alone. Where the CPU has AVX-512, warpinit's functions are also
vectorised with LLVM's ``-vectorizer-maximize-bandwidth``: a sampler loop mixes Philox's words, held
in 64-bit lanes, with 32-bit (or 16-bit) outputs, and LLVM otherwise sizes its vectors by the widest
type, leaving the float math on half-width registers. The option is global to LLVM, so it is set
only while Numba compiles a warpinit function (under Numba's compiler lock) and reset afterwards; on
AVX2-only CPUs it is left alone (it did not help there). A loop whose narrowest type is a 16-bit
store is then sized by that store, at 32 lanes of float32 math in two registers each, and spills;
``cpu_jit(lanes={"avx512": 16})`` sets ``-force-vector-width`` the same way for such a function
alone, on AVX-512 only. On AVX2, a loop of few long dependent chains (the redraw pass's candidates,
one Philox call and one transform per element) sized by its 64-bit words runs four lanes an
iteration and waits on their latency; ``lanes={"avx2": 8}`` gives it two registers of words for
each register of float32 values. The sampler loops keep more live values than there are vector
registers and spill some to the stack; the x86-64 ABI aligns a frame to 16 bytes only, so LLVM
writes those spills with unaligned moves, and the same machine code then runs at speeds that depend
on where its callers left the stack pointer. The sampler loops are therefore compiled with
``cpu_jit(aligned_stack=True)``, marked ``alignstack(64)``: such a function realigns its own frame,
and its spills are aligned moves wherever it is called from. (Other functions go without: the
realignment takes a frame pointer, a register, and the small orthogonal member ran slower with
it.) None of this changes an instruction set
(the CPU's features decide what exists: an AVX2-only CPU still gets 256-bit code) or the arithmetic:
the kernels contract no multiply-adds unless they say so, and lane width does not change an
elementwise result. Other Numba code in the process compiles as it would without warpinit: the
mark is added by a target context of warpinit's own, used only by ``cpu_jit``'s pipeline.

Nothing here imports ``numba.cuda`` until a CUDA twin is asked for: ``import warpinit`` stays light and
compiles nothing. Simulator awareness lives in this module only.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import os
import pickle
import sys
import types

import llvmlite.binding
import llvmlite.ir
import numba
import numba.core.sigutils
import numba.extending
from numba.core import caching, compiler

__all__ = [
    "ALLOCATION_FAILED",
    "DiskCache",
    "avx512",
    "cpu_jit",
    "cpu_callback",
    "call_callback",
    "data_pointer",
    "vector_isa",
    "shared",
    "shared_intrinsic",
    "specialize",
    "cuda_twin",
    "cuda_device",
    "for_cuda",
    "simulator_enabled",
    "cuda_module",
]

# The LLVM function attribute that lets a loop use the widest vectors the CPU has (see above).
WIDE_VECTORS = '"prefer-vector-width"="512"'
# The stack alignment, in bytes, of the functions compiled with ``cpu_jit(aligned_stack=True)``.
STACK_ALIGNMENT = 64
# What warpinit's code generation adds to Numba's: part of the on-disk cache's key.
CODEGEN_MARK = (WIDE_VECTORS, "vectorizer-maximize-bandwidth with AVX-512", "forced lanes per vector ISA",
                f"alignstack({STACK_ALIGNMENT})")


class _Attributes(llvmlite.ir.FunctionAttributes):
    _known = llvmlite.ir.FunctionAttributes._known | {WIDE_VECTORS}


_WIDE_CONTEXTS: dict[tuple, type] = {}


def _mark_wide(module, stack_alignment: int) -> None:
    for function in module.functions:
        if function.blocks:  # a definition, not a declaration
            attributes = _Attributes(function.attributes)
            attributes.alignstack = max(function.attributes.alignstack, stack_alignment)
            attributes.personality = function.attributes.personality
            attributes.add(WIDE_VECTORS)
            function.attributes = attributes


def _wide_context(context, stack_alignment: int = 0):
    """A copy of Numba's CPU target context whose lowered modules are marked for wide vectors and,
    with a ``stack_alignment``, to realign their frames to it (on x86; elsewhere the context
    itself). Parallel loops are lowered through the same context, so the functions Numba outlines
    from a ``prange`` are marked too."""
    if not llvmlite.binding.get_process_triple().startswith(("x86_64", "i686", "i386")):
        return context
    base = type(context)
    if (base, stack_alignment) not in _WIDE_CONTEXTS:
        def post_lowering(self, module, library):
            base.post_lowering(self, module, library)
            _mark_wide(module, stack_alignment)

        name = "Wide" + base.__name__ + (f"Aligned{stack_alignment}" if stack_alignment else "")
        _WIDE_CONTEXTS[base, stack_alignment] = type(name, (base,), {"post_lowering": post_lowering})
    wide = copy.copy(context)  # as Numba makes its per-compilation subtargets
    wide.__class__ = _WIDE_CONTEXTS[base, stack_alignment]
    return wide


def _features(codegen) -> list[str]:
    """The CPU features ``codegen`` (by default that of Numba's CPU target, which ``cpu_jit``
    compiles with) emits code for: the host's, or ``NUMBA_CPU_FEATURES`` when set."""
    if codegen is None:
        from numba.core.registry import cpu_target

        codegen = cpu_target.target_context.codegen()
    return codegen.magic_tuple()[2].split(",")


def vector_isa(codegen=None) -> str:
    """The widest vector instruction set ``codegen`` (see ``_features``) emits: "avx512" (AVX-512 F),
    "avx2", or "" (any other CPU); the keys of ``cpu_jit``'s ``lanes``."""
    features = _features(codegen)
    if "+avx512f" in features:
        return "avx512"
    return "avx2" if "+avx2" in features else ""


def avx512(codegen=None) -> bool:
    """Whether ``codegen`` (see ``_features``) emits code for a CPU with AVX-512 F."""
    return vector_isa(codegen) == "avx512"


_BANDWIDTH_DEPTH = [0]  # nested compilations (a kernel compiles the functions it calls) open it once


@contextlib.contextmanager
def _maximized_bandwidth(codegen):
    """LLVM's vectoriser sizes loops by their narrowest type while this is open, if ``codegen``
    targets AVX-512 (see the module docstring). Numba holds its compiler lock throughout."""
    if not avx512(codegen):
        yield
        return
    if _BANDWIDTH_DEPTH[0] == 0:
        llvmlite.binding.set_option("", "-vectorizer-maximize-bandwidth=true")
    _BANDWIDTH_DEPTH[0] += 1
    try:
        yield
    finally:
        _BANDWIDTH_DEPTH[0] -= 1
        if _BANDWIDTH_DEPTH[0] == 0:
            llvmlite.binding.set_option("", "-vectorizer-maximize-bandwidth=false")


_LANES = [0]  # the forced vector width of the function being compiled (0: LLVM's choice)


@contextlib.contextmanager
def _forced_lanes(codegen, lanes):
    """LLVM's loop vectoriser uses ``lanes[vector_isa(codegen)]`` lanes (``-force-vector-width``)
    while this is open, where ``lanes`` (a tuple of (ISA, lanes) pairs) names the ISA ``codegen``
    targets; its own choice otherwise, also for the functions compiled inside (the setting is the
    innermost compilation's). Under Numba's compiler lock, as ``_maximized_bandwidth``."""
    lanes = dict(lanes).get(vector_isa(codegen), 0)
    outer = _LANES[0]
    if lanes != outer:
        llvmlite.binding.set_option("", f"-force-vector-width={lanes}")
    _LANES[0] = lanes
    try:
        yield
    finally:
        _LANES[0] = outer
        if lanes != outer:
            llvmlite.binding.set_option("", f"-force-vector-width={outer}")


class _Compiler(compiler.Compiler):
    """Numba's default pipeline, lowering through ``_wide_context``, vectorising under
    ``_maximized_bandwidth`` (and ``_forced_lanes`` for a subclass that sets ``lanes``; a subclass
    that sets ``stack_alignment`` realigns its functions' frames)."""

    lanes = ()
    stack_alignment = 0

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)
        self.state.targetctx = _wide_context(self.state.targetctx, self.stack_alignment)

    @contextlib.contextmanager
    def _vectoriser(self):
        codegen = self.state.targetctx.codegen()
        with _maximized_bandwidth(codegen), _forced_lanes(codegen, self.lanes):
            yield

    def compile_extra(self, func):
        with self._vectoriser():
            return super().compile_extra(func)

    def compile_ir(self, func_ir, lifted=(), lifted_from=None):
        with self._vectoriser():
            return super().compile_ir(func_ir, lifted, lifted_from)


_COMPILERS: dict[tuple, type] = {}


def _compiler_with(lanes: tuple, stack_alignment: int) -> type:
    if (lanes, stack_alignment) not in _COMPILERS:
        name = "".join(f"{isa.capitalize()}{count}" for isa, count in lanes) + "Lanes" * bool(lanes)
        name += f"Aligned{stack_alignment}" if stack_alignment else ""
        _COMPILERS[lanes, stack_alignment] = type(f"_Compiler{name}", (_Compiler,),
                                                  {"lanes": lanes, "stack_alignment": stack_alignment})
    return _COMPILERS[lanes, stack_alignment]


# Options of every compiled CPU function: the NumPy error model keeps float division branch-free
# (no ZeroDivisionError checks), which the vectoriser needs.
CPU_OPTIONS = {"error_model": "numpy", "nogil": True, "pipeline_class": _Compiler}


def cpu_jit(cache: bool = False, lanes: dict[str, int] | None = None, aligned_stack: bool = False, **options):
    """``numba.njit`` with warpinit's CPU options (``CPU_OPTIONS``) and Numba's ``options`` (e.g.
    ``parallel=True``, ``forceinline=True``, ``fastmath={"contract"}``).

    Args:
        cache: keep the compiled code on disk (``DiskCache``), as Numba's ``cache=True`` does, but
            usable on a read-only install and safe against damaged cache files.
        lanes: the lanes to vectorise the function's loops at, by the vector ISA the CPU
            functions are compiled for (``vector_isa``: "avx512", "avx2"); LLVM's choice for an
            ISA not named. On AVX-512, a loop that stores 16-bit values but computes in 32-bit
            floats gets 32 lanes from ``-vectorizer-maximize-bandwidth``: two registers for every
            value, which spill in the sampler loops; 16 keeps one register of float32 per value.
            On AVX2, 8 lanes (one register of float32 values) interleave a latency-bound loop's
            64-bit chains two registers at a time.
        aligned_stack: the function realigns its frame to ``STACK_ALIGNMENT`` bytes (on x86), so
            that its vector spills are aligned moves wherever it is called from: for loops that
            keep more vectors live than there are registers (the sampler loops). It costs a frame
            pointer, so other functions do without it.
    """
    if lanes:
        for isa, count in lanes.items():
            if isa not in ("avx512", "avx2") or not isinstance(count, int) or count < 1:
                raise ValueError(f"lanes: expected {{'avx512' or 'avx2': a positive int}}, got {lanes!r}")
    if lanes or aligned_stack:
        pipeline = _compiler_with(tuple(sorted((lanes or {}).items())), STACK_ALIGNMENT if aligned_stack else 0)
        options = {**options, "pipeline_class": pipeline}

    def compile_(py_func):
        dispatcher = numba.njit(**{**CPU_OPTIONS, **options})(py_func)
        if cache:
            dispatcher._cache = DiskCache(py_func)  # where Numba's enable_caching() puts its own
        return dispatcher

    return compile_


ALLOCATION_FAILED = -1  # a ``cpu_callback``'s result when an allocation inside it failed (it cannot raise)


def cpu_callback(py_func, signature, cache: bool = True):
    """``py_func`` compiled now as a C callback (``numba.cfunc``) of ``signature`` with warpinit's CPU
    options and pipeline, and cached on disk as ``cpu_jit(cache=True)`` functions are.

    A kernel given the callback's ``address`` (an int64 argument, so that the kernel can be cached
    and its dispatch stays cheap) calls it with ``call_callback``: the callback's code is not linked
    into the caller's, so LLVM does not optimise and compile it again for every layer of the caller
    (a ``prange`` driver has four). Pointers to arrays are passed as ``data_pointer(array)`` and
    rebuilt with ``numba.carray``.
    An exception inside a callback cannot reach the caller (Numba prints it and the result is
    undefined): the callback must catch what it can raise and report it in its result.
    """
    from numba.core import ccallback

    callback = ccallback.CFunc(py_func, numba.core.sigutils.normalize_signature(signature), locals={},
                               options={key: value for key, value in CPU_OPTIONS.items() if key != "pipeline_class"},
                               pipeline_class=_Compiler)
    if cache:
        callback._cache = DiskCache(py_func)
    callback.compile()
    return callback


@numba.extending.intrinsic
def call_callback(typingctx, address, arguments):
    """``callback(*arguments)`` for the ``cpu_callback`` whose int64 ``address`` is given: an int64
    result. ``arguments`` is a tuple of exactly the types of the callback's signature (``voidptr``
    from ``data_pointer``, ``np.int64(...)`` for int64): nothing checks them against it."""
    if not isinstance(address, numba.types.Integer) or not isinstance(arguments, numba.types.BaseTuple):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args[1].types
        values = [builder.extract_value(args[1], k) for k in range(len(kinds))]
        function = llvmlite.ir.FunctionType(llvmlite.ir.IntType(64), [context.get_value_type(kind) for kind in kinds])
        return builder.call(builder.inttoptr(args[0], function.as_pointer()), values)

    return numba.types.int64(address, arguments), codegen


@numba.extending.intrinsic
def data_pointer(typingctx, array):
    """The address of ``array``'s first element as a ``void *``, for a ``cpu_callback``."""
    if not isinstance(array, numba.types.Array):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, value=args[0]).data
        return builder.bitcast(data, llvmlite.ir.IntType(8).as_pointer())

    return numba.types.voidptr(array), codegen


# The on-disk cache ----------------------------------------------------------------------------------

_DIGEST_BYTES = hashlib.sha256().digest_size


class _CacheFile(caching.IndexDataCacheFile):
    """Numba's index (.nbi) and data (.nbc) files of one function in one directory, read
    defensively: an index that cannot be read is empty, and a data file holds the SHA-256 of its
    contents and the index key it was saved under, so that only intact object code, saved for this
    very key, ever reaches LLVM (damaged object code can crash the process when it is loaded)."""

    def save(self, key, data):
        super().save(key, (key, data))

    def load(self, key):
        name = self._load_index().get(key)
        if name is None:
            return None
        try:
            with open(self._data_path(name), "rb") as file:
                blob = file.read()
        except OSError:
            return None
        digest, payload = blob[:_DIGEST_BYTES], blob[_DIGEST_BYTES:]
        if hashlib.sha256(payload).digest() != digest:
            return None
        try:
            saved_key, data = pickle.loads(payload)
        except Exception:  # intact but unreadable here (another Python or Numba): a miss
            return None
        return data if saved_key == key else None

    def has_index(self) -> bool:
        return os.path.isfile(self._index_path)

    def _load_index(self):
        try:
            overloads = super()._load_index()
        except Exception:  # truncated or garbage: rewritten at the next save
            return {}
        return overloads if isinstance(overloads, dict) else {}

    def _save_data(self, name, data):
        payload = self._dump(data)
        with self._open_for_write(self._data_path(name)) as file:
            file.write(hashlib.sha256(payload).digest() + payload)


class DiskCache(caching.Cache):
    """The on-disk cache of one CPU function of warpinit: Numba's cache files and places, made
    usable on a read-only install and robust against damaged files.

    The directories are Numba's, in its order: ``NUMBA_CACHE_DIR`` when set, the ``__pycache__``
    next to the source file, the user-wide cache (``~/.cache/numba``). Compiled code is saved into
    and loaded from the first of them that is writable, as Numba does; it is also loaded from a
    read-only one that holds it (a cache prepared when a container image or a root-owned
    site-packages was built), which Numba would not use.
    With none writable and none holding the function, it compiles in memory each process. A
    truncated or garbage index, or a data file that is damaged, stale or for another key, is a miss:
    the function compiles again and its files are rewritten where that is possible. The key is
    Numba's (signature, CPU name and features, bytecode) plus ``CODEGEN_MARK`` and
    ``sources_digest()``.
    """

    def __init__(self, py_func):  # Cache.__init__ would insist on a writable directory
        self._name = repr(py_func)
        self._py_func = py_func
        self._enabled = True
        self._target = self._target_locator = None
        self._sources: list[_CacheFile] = []
        source = inspect.getfile(py_func)
        if not os.path.isfile(source):
            return
        locators = [caching.UserProvidedCacheLocator] if numba.config.CACHE_DIR else []
        locators = [cls(py_func, source) for cls in locators + [caching.InTreeCacheLocator,
                                                               caching.UserWideCacheLocator]]
        stamp = locators[0].get_source_stamp()
        name = f"{os.path.splitext(os.path.basename(source))[0]}.{py_func.__qualname__}".replace("<", "").replace(">", "")
        base = f"{name}-{py_func.__code__.co_firstlineno}.py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
        for locator in locators:
            file = _CacheFile(locator.get_cache_path(), base, stamp)
            if self._target is None and _writable(locator):
                self._target, self._target_locator = file, locator
                self._sources.append(file)
            elif file.has_index() and not _writable(locator):
                self._sources.append(file)

    @property
    def cache_path(self):
        return self._target_locator.get_cache_path() if self._target_locator else None

    def flush(self):
        if self._target is not None:
            self._target.flush()

    def load_overload(self, sig, target_context):
        if not self._enabled or not self._sources:
            return None
        target_context.refresh()
        key = self._index_key(sig, target_context.codegen())
        for file in self._sources:
            data = file.load(key)
            if data is None:
                continue
            try:
                return compiler.CompileResult._rebuild(target_context, *data)
            except Exception:  # intact but unusable here: a miss
                continue
        return None

    def save_overload(self, sig, cres):
        if not self._enabled or self._target is None:
            return
        if any(not lifted.can_cache for lifted in cres.lifted) or cres.library.has_dynamic_globals:
            return
        try:
            self._target_locator.ensure_cache_path()
            self._target.save(self._index_key(sig, cres.codegen), cres._reduce())
        except OSError:  # the directory went away or became read-only: compiled in memory only
            pass

    def _index_key(self, sig, codegen):
        return super()._index_key(sig, codegen) + CODEGEN_MARK + (sources_digest(),)


@functools.lru_cache(maxsize=None)
def sources_digest(folder: str = os.path.dirname(os.path.abspath(__file__))) -> str:
    """SHA-256 of the Python sources in ``folder`` (by default the kernels'), part of the on-disk
    cache's key.

    A cached kernel holds the code of every function it calls, from other files too, but Numba's key
    covers only its own bytecode and the stamp of its own file: an edited rounding routine or
    compile option elsewhere would otherwise leave the old code on disk. Files that cannot be read
    are left out (the key is then Numba's alone for them)."""
    digest = hashlib.sha256()
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(".py"))
    except OSError:
        names = []
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as file:
                digest.update(name.encode() + b"\0" + file.read())
        except OSError:
            continue
    return digest.hexdigest()


def _writable(locator) -> bool:
    try:
        locator.ensure_cache_path()
    except OSError:
        return False
    return True

# id(CPU object) -> (CPU object, kind, payload). kind is "function" (payload: the Python source
# function) or "intrinsic" (payload: a pure-Python implementation for the simulator).
_SHARED: dict[int, tuple[object, str, object]] = {}
_TWINS: dict[int, object] = {}


def shared(py_func):
    """Compile ``py_func`` for the CPU (inlined njit) and register it for a CUDA twin.

    Args:
        py_func: a plain Python function using only scalar arithmetic and other shared functions.

    Returns:
        The CPU dispatcher; module code and CPU kernels call it by its name.
    """
    dispatcher = cpu_jit(forceinline=True)(py_func)
    _SHARED[id(dispatcher)] = (dispatcher, "function", py_func)
    return dispatcher


def shared_intrinsic(python_impl):
    """Register a Numba intrinsic used by shared code, with ``python_impl`` for the CUDA simulator.

    Numba's intrinsics are generic: the same object lowers for the CPU and for CUDA. The simulator
    runs Python, so it gets the equivalent NumPy implementation instead.
    """

    def register(intrinsic):
        _SHARED[id(intrinsic)] = (intrinsic, "intrinsic", python_impl)
        return intrinsic

    return register


def specialize(py_func, suffix: str, **bindings):
    """A copy of ``py_func`` named ``<name><suffix>`` whose global names in ``bindings`` are rebound.

    One source serves both precisions: a kernel template calls, say, ``_draw``, and its float32 and
    float64 versions bind that name to ``_draw24`` and ``_draw53``. The distinct name keeps Numba's
    on-disk cache entries of the versions apart.
    """
    namespace = dict(py_func.__globals__)
    namespace.update(bindings)
    twin = _copy_function(py_func, namespace)
    twin.__name__ = py_func.__name__ + suffix
    twin.__qualname__ = py_func.__qualname__ + suffix
    return twin


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator replaces the GPU (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_module():
    """Import and return ``numba.cuda``, insisting that it is the numba-cuda package.

    Raises:
        ImportError: numba-cuda is not installed (Numba's deprecated built-in target is not used).
    """
    try:
        import numba_cuda  # noqa: F401  (only its presence is checked)
    except ImportError as error:
        raise ImportError(
            "warpinit's CUDA kernels need the numba-cuda package: pip install 'warpinit[cuda13]' "
            "(or 'warpinit[cuda12]'); for the simulator and PTX checks, 'warpinit[test]'"
        ) from error
    from numba import cuda

    return cuda


def cuda_twin(cpu_object):
    """The CUDA device function compiled from the same source as ``cpu_object`` (memoised)."""
    key = id(cpu_object)
    if key not in _TWINS:
        _, kind, payload = _SHARED[key]
        if kind == "intrinsic":
            _TWINS[key] = payload if simulator_enabled() else cpu_object
        else:
            cuda = cuda_module()
            _TWINS[key] = cuda.jit(device=True, inline="always")(for_cuda(payload))
    return _TWINS[key]


def cuda_device(py_func):
    """Compile a plain Python function (e.g. a specialised template) as an inlined CUDA device function."""
    return cuda_module().jit(device=True, inline="always")(for_cuda(py_func))


def for_cuda(py_func):
    """A copy of ``py_func`` whose global names of shared functions point to their CUDA twins.

    Only the names the code uses are rebound (its ``co_names``), so twins are made for the call
    graph below ``py_func`` and nothing else.
    """
    namespace = dict(py_func.__globals__)
    for name in py_func.__code__.co_names:
        value = namespace.get(name)
        if id(value) in _SHARED and _SHARED[id(value)][0] is value:
            namespace[name] = cuda_twin(value)
    return _copy_function(py_func, namespace)


def _copy_function(py_func, namespace):
    twin = types.FunctionType(
        py_func.__code__, namespace, py_func.__name__, py_func.__defaults__, py_func.__closure__
    )
    twin.__qualname__ = py_func.__qualname__
    twin.__doc__ = py_func.__doc__
    twin.__module__ = py_func.__module__
    return twin
