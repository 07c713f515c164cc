"""Weight initializers as pure functions: ``init(gen, shape, dtype, ...) -> (array, next_gen)``.

The initializers PyTorch, MindSpore and JAX users know (uniform, normal, truncated normal,
Xavier/Glorot, Kaiming/He, LeCun, orthogonal), each drawing with exactly one key of ``gen``
and returning the generator advanced by one, like every op of :mod:`rngstate.random`.

Layout. Fan-based initializers need to know which axes of the weight are its inputs and
outputs. The default is JAX's layout: a dense weight is ``(in, out)`` (``x @ w``) and a
convolution kernel is ``(*spatial, in, out)``, i.e. ``in_axis=-2, out_axis=-1``. For
PyTorch / MindSpore weights, ``(out, in, *spatial)``, pass ``in_axis=1, out_axis=0``. The
remaining axes form the receptive field, as in PyTorch: ``fan_in = shape[in_axis] * field``,
``fan_out = shape[out_axis] * field``.

>>> import rngstate as rs
>>> w, g = rs.init.kaiming_uniform(rs.Generator(seed=0), (64, 32))
>>> w.shape, w.dtype, g
((64, 32), dtype('float32'), Generator(seed=0, offset=1))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from rngstate import _checks, random
from rngstate.generator import Generator

__all__ = [
    "Initializer",
    "as_jax_initializer",
    "calculate_gain",
    "compute_fans",
    "from_jax_initializer",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "orthogonal",
    "truncated_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
]

Shape = Sequence[int]
DType = Any
RealArray = random.RealArray  # the annotation make_op traces instead of compiling in


class Initializer(Protocol):
    """The shape of every initializer here: ``(gen, shape, dtype, ...) -> (array, next_gen)``."""

    def __call__(
        self, gen: Generator, shape: Shape, dtype: DType = ..., **hyper: Any
    ) -> tuple[jax.Array, Generator]: ...


# -- fans and gains ------------------------------------------------------------------------


def compute_fans(shape: Shape, in_axis: int = -2, out_axis: int = -1) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``: its in/out sizes times the receptive field.

    The receptive field is the product of every axis other than ``in_axis`` and ``out_axis``
    (PyTorch's rule). Defaults follow JAX's layout, ``(*spatial, in, out)``; PyTorch's
    ``(out, in, *spatial)`` is ``in_axis=1, out_axis=0``.

    >>> compute_fans((3, 3, 16, 32))                      # JAX conv kernel
    (144, 288)
    >>> compute_fans((32, 16, 3, 3), in_axis=1, out_axis=0)  # the same kernel, PyTorch layout
    (144, 288)
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(
            f"shape must have at least 2 dimensions to compute fans, got {shape}; "
            "use uniform or normal for biases and vectors"
        )
    axes = []
    for name, axis in (("in_axis", in_axis), ("out_axis", out_axis)):
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"{name} must be in [{-len(shape)}, {len(shape)}), got {axis}")
        axes.append(axis % len(shape))
    if axes[0] == axes[1]:
        raise ValueError(f"in_axis and out_axis must differ, both are axis {axes[0]}")
    field = math.prod(d for i, d in enumerate(shape) if i not in axes)
    return shape[axes[0]] * field, shape[axes[1]] * field


_UNIT_GAIN = frozenset(
    {
        "linear",
        "identity",
        "sigmoid",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    }
)
_GAINS = {"tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's and MindSpore's table).

    ``linear``, ``identity``, ``conv*``, ``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt(2);
    ``leaky_relu``: sqrt(2 / (1 + param**2)) with ``param`` the negative slope (default
    0.01); ``selu``: 3/4.

    >>> calculate_gain("relu") == 2 ** 0.5, calculate_gain("tanh")
    (True, 1.6666666666666667)
    >>> calculate_gain("leaky_relu", 0.2)
    1.3867504905630728
    """
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity in _GAINS:
        return _GAINS[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float, np.number)):
            raise TypeError(f"param (the negative slope) must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1.0 + float(slope) ** 2))
    known = sorted(_UNIT_GAIN | set(_GAINS) | {"leaky_relu"})
    raise ValueError(f"nonlinearity must be one of {', '.join(known)}; got {nonlinearity!r}")


# -- checks shared by the initializers -----------------------------------------------------


def _float_dtype(dtype: DType) -> Any:
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {dt}")
    return dt


def _fan(shape: Shape, mode: str, in_axis: int, out_axis: int) -> int:
    fan_in, fan_out = compute_fans(shape, in_axis, out_axis)
    if mode == "fan_in":
        fan = fan_in
    elif mode == "fan_out":
        fan = fan_out
    else:
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if fan == 0:
        raise ValueError(f"{mode} of shape {tuple(shape)} is 0; cannot scale by it")
    return fan


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, (int, float, np.number)) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


# Each initializer is one op of rngstate.random's kind (make_op): the draw and the arithmetic
# on it run in one compiled dispatch, which also makes the weights bit-identical whether an
# initializer is called eagerly or inside the user's jit. Parameters annotated RealArray are
# traced (no recompiling per value); the others are part of what is compiled.


def _scaled_sampler(
    key: jax.Array,
    shape: Shape,
    dtype: DType,
    distribution: str,
    scale: RealArray,
    shift: RealArray,
) -> jax.Array:
    """``U(-1, 1)`` or ``N(0, 1)`` values, times ``scale``, plus ``shift``."""
    if distribution == "uniform":
        values = jax.random.uniform(key, _flat(shape), dtype, -1.0)
    else:
        values = jax.random.normal(key, _flat(shape), dtype)
    return values.reshape(shape) * jnp.asarray(scale, dtype) + jnp.asarray(shift, dtype)


def _flat(shape: Shape) -> tuple[int]:
    # jax.random lays its bits out in row-major order, so drawing flat and reshaping gives
    # the values of drawing `shape` directly (the tests compare with jax.nn.initializers on a
    # conv kernel), while XLA:CPU compiles a flat draw several times faster than a rank-4 one.
    return (math.prod(shape),)


def _truncated_sampler(
    key: jax.Array,
    shape: Shape,
    dtype: DType,
    mean: RealArray,
    std: RealArray,
    lower: RealArray,
    upper: RealArray,
) -> jax.Array:
    """``N(mean, std**2)`` truncated to ``[lower, upper]``; clipped so rounding stays inside."""
    bounds = (lower - mean) / std, (upper - mean) / std
    z = jax.random.truncated_normal(key, *bounds, _flat(shape), dtype).reshape(shape)
    values = z * jnp.asarray(std, dtype) + jnp.asarray(mean, dtype)
    return jnp.clip(values, jnp.asarray(lower, dtype), jnp.asarray(upper, dtype))


def _orthogonal_sampler(
    key: jax.Array, shape: Shape, dtype: DType, column_axis: int, gain: RealArray
) -> jax.Array:
    """``jax.nn.initializers.orthogonal``'s construction: orthonormal along ``column_axis``."""
    n_cols = shape[column_axis]
    n_rows = math.prod(shape) // n_cols if n_cols else 0
    matrix = jax.random.orthogonal(key, n_rows, (), dtype, n_cols)
    rest = tuple(d for i, d in enumerate(shape) if i != column_axis % len(shape))
    weight = jnp.moveaxis(matrix.reshape(*rest, n_cols), -1, column_axis)
    return weight * jnp.asarray(gain, dtype)


# Both draw through one covered jax.random op, so they take the fast path (rngstate.fast).
_scaled_op = random.make_op(
    "scaled",
    _scaled_sampler,
    fast_as=lambda a: ("uniform" if a["distribution"] == "uniform" else "normal", a),
)
_truncated_op = random.make_op(
    "truncated", _truncated_sampler, fast_as=lambda a: ("truncated_normal", a)
)
_orthogonal_op = random.make_op("orthogonal", _orthogonal_sampler)


def _scaled(
    gen: Generator, shape: Shape, dtype: DType, distribution: str, variance: float
) -> tuple[jax.Array, Generator]:
    """Zero-mean values of ``variance``: ``U(-1, 1) * sqrt(3 var)`` or ``N(0, 1) * sqrt(var)``.

    The arithmetic of ``jax.nn.initializers.variance_scaling``: the two agree to rounding.
    """
    scale = math.sqrt(3.0 * variance if distribution == "uniform" else variance)
    return _scaled_op(gen, _shape(shape), _float_dtype(dtype), distribution, scale, 0.0)


def _shape(shape: Shape) -> tuple[int, ...]:
    return _checks.shape(shape)


# -- the initializers ----------------------------------------------------------------------


def uniform(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    minval: float = 0.0,
    maxval: float = 1.0,
) -> tuple[jax.Array, Generator]:
    """Values uniform on ``[minval, maxval)`` (PyTorch ``uniform_(a, b)``; defaults ``[0, 1)``).

    >>> import rngstate as rs
    >>> w, g = uniform(rs.Generator(seed=0), (1000,), minval=-0.5, maxval=0.5)
    >>> bool((w >= -0.5).all() and (w < 0.5).all())
    True
    """
    return random.uniform(gen, shape, _float_dtype(dtype), minval, maxval)


def normal(
    gen: Generator, shape: Shape, dtype: DType = jnp.float32, mean: float = 0.0, std: float = 1.0
) -> tuple[jax.Array, Generator]:
    """Values from ``N(mean, std**2)`` (PyTorch ``normal_``; MindSpore ``Normal(sigma, mean)``).

    >>> import rngstate as rs
    >>> w, g = normal(rs.Generator(seed=0), (3,), std=0.02)
    >>> w.shape, g.offset.tolist()
    ((3,), [0, 1])
    """
    _non_negative("std", std)
    return _scaled_op(gen, _shape(shape), _float_dtype(dtype), "normal", std, mean)


def truncated_normal(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    mean: float = 0.0,
    std: float = 1.0,
    lower: float = -2.0,
    upper: float = 2.0,
) -> tuple[jax.Array, Generator]:
    """``N(mean, std**2)`` conditioned on ``[lower, upper]`` (PyTorch ``trunc_normal_``).

    ``lower`` and ``upper`` are values, not multiples of ``std`` (PyTorch's ``a, b`` and
    MindSpore's ``TruncatedNormal``); the spread of the result is below ``std``, the standard
    deviation of the normal before truncation.

    >>> import rngstate as rs
    >>> w, g = truncated_normal(rs.Generator(seed=0), (1000,), std=0.02, lower=-0.04, upper=0.04)
    >>> bool((abs(w) <= 0.04).all())
    True
    """
    if isinstance(std, (int, float, np.number)) and not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    dtype = _float_dtype(dtype)
    if all(isinstance(v, (int, float, np.number)) for v in (lower, upper)) and not lower < upper:
        raise ValueError(f"lower must be < upper, got lower={lower}, upper={upper}")
    return _truncated_op(gen, _shape(shape), dtype, mean, std, lower, upper)


def xavier_uniform(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    gain: float = 1.0,
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """Glorot uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Variance ``gain**2 * 2 / (fan_in + fan_out)``. PyTorch ``xavier_uniform_``, MindSpore
    ``XavierUniform``, JAX ``glorot_uniform`` (gain 1).

    >>> import rngstate as rs
    >>> w, _ = xavier_uniform(rs.Generator(seed=0), (100, 50))
    >>> bool(abs(w).max() <= (6 / 150) ** 0.5)
    True
    """
    _non_negative("gain", gain)
    fan_in, fan_out = compute_fans(shape, in_axis, out_axis)
    return _scaled(gen, shape, dtype, "uniform", gain**2 * 2.0 / (fan_in + fan_out))


def xavier_normal(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    gain: float = 1.0,
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """Glorot normal: ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    PyTorch ``xavier_normal_``, MindSpore ``XavierNormal`` (an untruncated normal; JAX's
    ``glorot_normal`` truncates, see :func:`from_jax_initializer` for it).

    >>> import rngstate as rs
    >>> w, _ = xavier_normal(rs.Generator(seed=0), (100, 50), gain=2.0)
    >>> w.shape
    (100, 50)
    """
    _non_negative("gain", gain)
    fan_in, fan_out = compute_fans(shape, in_axis, out_axis)
    return _scaled(gen, shape, dtype, "normal", gain**2 * 2.0 / (fan_in + fan_out))


def kaiming_uniform(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``.

    ``fan`` is ``fan_in`` or ``fan_out`` (``mode``); ``gain = calculate_gain(nonlinearity,
    negative_slope)``. The defaults are PyTorch's ``kaiming_uniform_`` (whose ``a`` is
    ``negative_slope``) and MindSpore's ``HeUniform``: leaky_relu with slope 0, i.e. the
    ReLU gain sqrt(2), so variance ``2 / fan_in``.

    >>> import rngstate as rs
    >>> w, _ = kaiming_uniform(rs.Generator(seed=0), (100, 50))
    >>> bool(abs(w).max() <= (2 ** 0.5) * (3 / 100) ** 0.5)
    True
    """
    gain = calculate_gain(nonlinearity, negative_slope)
    variance = gain**2 / _fan(shape, mode, in_axis, out_axis)
    return _scaled(gen, shape, dtype, "uniform", variance)


def kaiming_normal(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """He normal: ``N(0, std**2)`` with ``std = gain / sqrt(fan)``.

    Parameters as :func:`kaiming_uniform`. An untruncated normal, as PyTorch's
    ``kaiming_normal_`` and MindSpore's ``HeNormal`` (JAX's ``he_normal`` truncates, see
    :func:`from_jax_initializer`).

    >>> import rngstate as rs
    >>> w, _ = kaiming_normal(rs.Generator(seed=0), (64, 3, 3, 3), mode="fan_out",
    ...                       nonlinearity="relu", in_axis=1, out_axis=0)
    >>> w.shape
    (64, 3, 3, 3)
    """
    gain = calculate_gain(nonlinearity, negative_slope)
    variance = gain**2 / _fan(shape, mode, in_axis, out_axis)
    return _scaled(gen, shape, dtype, "normal", variance)


def lecun_uniform(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """LeCun uniform: ``U(-b, b)`` with ``b = sqrt(3 / fan_in)``, variance ``1 / fan_in``.

    >>> import rngstate as rs
    >>> w, _ = lecun_uniform(rs.Generator(seed=0), (300, 10))
    >>> bool(abs(w).max() <= 0.1)
    True
    """
    return _scaled(gen, shape, dtype, "uniform", 1.0 / _fan(shape, "fan_in", in_axis, out_axis))


def lecun_normal(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    in_axis: int = -2,
    out_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """LeCun normal: ``N(0, 1 / fan_in)``, untruncated (JAX's ``lecun_normal`` truncates).

    >>> import rngstate as rs
    >>> w, _ = lecun_normal(rs.Generator(seed=0), (300, 10))
    >>> w.shape
    (300, 10)
    """
    return _scaled(gen, shape, dtype, "normal", 1.0 / _fan(shape, "fan_in", in_axis, out_axis))


def orthogonal(
    gen: Generator,
    shape: Shape,
    dtype: DType = jnp.float32,
    gain: float = 1.0,
    column_axis: int = -1,
) -> tuple[jax.Array, Generator]:
    """A (semi-)orthogonal weight scaled by ``gain``: QR of a Gaussian matrix, Haar-distributed.

    The weight is viewed as a matrix whose columns run along ``column_axis`` and whose rows
    are all other axes; that matrix has orthonormal columns, or rows when it is wide. The
    default fits JAX's ``(in, out)`` layout (``jax.nn.initializers.orthogonal``);
    ``column_axis=0`` gives PyTorch's ``orthogonal_`` and MindSpore's ``Orthogonal`` on an
    ``(out, in, ...)`` weight.

    >>> import jax.numpy as jnp, rngstate as rs
    >>> w, _ = orthogonal(rs.Generator(seed=0), (8, 4))
    >>> bool(jnp.allclose(w.T @ w, jnp.eye(4), atol=1e-5))
    True
    """
    _non_negative("gain", gain)
    dtype = _float_dtype(dtype)
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 dimensions, got {shape}")
    if not -len(shape) <= column_axis < len(shape):
        raise ValueError(f"column_axis must be in [{-len(shape)}, {len(shape)}), got {column_axis}")
    return _orthogonal_op(gen, shape, dtype, column_axis, gain)


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
he_uniform = kaiming_uniform
he_normal = kaiming_normal


# -- the bridge to jax.nn.initializers -----------------------------------------------------


def _generator_from_key(key: Any) -> Generator:
    """The generator of a JAX key: its two words are the seed ``[high, low]``, offset 0."""
    if jnp.issubdtype(jnp.result_type(key), jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(key))
        if "threefry2x32" not in impl:
            raise ValueError(f"key must be a threefry2x32 key, got a key of impl {impl}")
        key = jax.random.key_data(key)
    key = jnp.asarray(key)
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise ValueError(
            "key must be a typed threefry2x32 key or its uint32[2] data, "
            f"got {key.dtype}{list(key.shape)}"
        )
    return Generator.from_words(key, jnp.zeros_like(key))


def as_jax_initializer(init: Initializer, **hyper: Any) -> Callable[..., jax.Array]:
    """A ``jax.nn.initializers``-style ``(key, shape, dtype=float32) -> array`` callable.

    The key (a typed ``threefry2x32`` key, e.g. ``jax.random.key(0)``, or its ``uint32[2]``
    data) becomes the generator ``Generator.from_words(key_data, [0, 0])``: its two words are
    the seed ``[high, low]`` and the offset is 0. ``hyper`` are passed on to ``init``. Use it
    with Flax, Equinox or any library that takes JAX initializers.

    >>> import jax
    >>> he = as_jax_initializer(kaiming_normal, mode="fan_out")
    >>> he(jax.random.key(0), (16, 8)).shape
    (16, 8)
    """

    def jax_init(key: Any, shape: Shape, dtype: DType = jnp.float32) -> jax.Array:
        return init(_generator_from_key(key), shape, dtype, **hyper)[0]

    jax_init.__name__ = jax_init.__qualname__ = getattr(init, "__name__", "initializer")
    jax_init.__doc__ = f"``{jax_init.__name__}`` as a JAX ``(key, shape, dtype)`` initializer."
    return jax_init


def from_jax_initializer(jax_init: Callable[..., jax.Array]) -> Initializer:
    """Make a JAX ``(key, shape, dtype)`` initializer into ``(gen, shape, dtype) -> (array, gen)``.

    The values are ``jax_init(gen.key(), shape, dtype)`` and the generator comes back
    advanced by one (one key per call, as every op). It goes through the same compiled
    dispatch as :mod:`rngstate.random`'s ops.

    >>> import jax, rngstate as rs
    >>> init = from_jax_initializer(jax.nn.initializers.he_normal())
    >>> w, g = init(rs.Generator(seed=0), (4, 3), jax.numpy.float32)
    >>> w.shape, g
    ((4, 3), Generator(seed=0, offset=1))
    """
    name = getattr(jax_init, "__name__", "jax_initializer")
    op = random.make_op(name, jax_init)
    op.__doc__ = (
        f"``{name}`` driven by a Generator: ``({name}(gen.key(), ...), gen.construct(1))``."
    )
    return op
