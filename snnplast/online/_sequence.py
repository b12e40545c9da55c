"""Online gradients of whole sequences (the same contract as the BPTT reference)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._rollout import check_loss
from . import _blocked
from ._blocked import BlockedStep, resolve_block
from ._deferred import CONTRACT_EVERY, contract_terms, deferred_pairs
from ._head_gathered import GatheredHeadStep
from ._late_signal import LateSignal
from ._online_step import OnlineStep


def check_block(block, name: str = "block") -> int:
    """``block`` (or another count of steps, named `name` in the error) checked: a number of
    steps, or ``None`` for the default choice."""
    if block is None:
        return None
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"{name} must be a positive integer (a number of steps) or None, "
                         f"got {block!r}")
    return block


def online_loss_and_grad(model, inputs, targets, policy, loss, *, key=None, with_scores=False,
                         block=None, contract_every=None, hoist=False, recompute=None,
                         late=None):
    """Mean over the batch of ``sum_t loss(out_t, y_t)`` and its online gradient.

    **Arguments:**

    - `inputs`: ``[B, T, ...]``; `targets`: ``[B, T, ...]``, or ``[B, 1, ...]`` for the same
      target at every step (a class label): it is read at every step where it is, whereas a
      target broadcast to ``[B, T, ...]`` is an array XLA materialises (4 bytes per sample and
      step for int32 labels).
    - `policy`: a transport policy; `key`: PRNG key for random policies (default key 0).
    - `with_scores`: also return the outputs summed over time ``[B, ...]``.
    - `block`: steps per block of trace accumulation when the policy's carried Jacobian is per
      unit (:func:`snnplast.online.accumulation_mode`); ``1`` is the step-by-step recursion,
      ``None`` :data:`DEFAULT_BLOCK` where some trace is stored per synapse (the whole
      sequence when it is short enough, :func:`snnplast.online.whole_sequence_steps`) and the
      step recursion elsewhere (:func:`snnplast.online.resolve_block`); a block longer than
      the sequence is the whole sequence.
      The numbers are the same for every block size (up to float rounding).
    - `contract_every`: in the step recursion, steps whose trace contractions meet in one
      product (:func:`snnplast.online.contract_terms`; ``None``: :data:`CONTRACT_EVERY`, ``1``:
      a product at every step). The same numbers for every value (up to float rounding).
    - `hoist`: evaluate the part of the step that depends on the input alone (an input
      projection ``W_in x_t``) for a chunk of steps at once, before it
      (:meth:`OnlineStep.hoist`; in blocks :data:`HOIST_EVERY` steps at a time), instead of
      inside every step; HeadSparse's gathered step recursion does not hoist. The same
      numbers either way (up to float rounding). Off by default: on a CPU it saved no time
      beyond the noise (the per-step product already runs at the batched product's rate),
      was slower in blocks, and its values cost memory
      (benchmarks/results/online_suite_rlif_hoisted.md).

    - `recompute`: where the sequence is one block, steps whose records its reverse pass
      recomputes at once from states kept in the forward pass (``None``:
      :data:`snnplast.online.RECOMPUTE_EVERY`; ``0``: keep every step's records, more memory,
      less time). The same numbers either way (up to float rounding).
    - `late`: form the learning signals of a chunk of steps (a block, or a chunk of deferred
      contractions in the step recursion) after the chunk's forward steps, in one product
      (:class:`snnplast.online.LateSignal`; where every parameter's direct term is cut, and in
      the step recursion where every contraction is deferred), instead of at each step;
      ``None``: :data:`snnplast.online.LATE_SIGNAL` (off: as fast in wall time, more CPU time
      and memory, measured). The same numbers either way (up to float rounding).

    **Returns:** ``(loss, grads)`` (and the summed outputs) with ``grads`` shaped like the model
    (``None`` where the model has no trainable array).
    """
    key = jax.random.PRNGKey(0) if key is None else key
    block = check_block(block)
    contract_every = check_block(contract_every, "contract_every")
    batch = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    x0 = jax.tree_util.tree_map(lambda a: a[0, 0], inputs)
    runner = OnlineStep(model, x0, policy, loss)
    p = runner.graph.split(model)
    carry = runner.init(model, batch, key)
    n_steps = jax.tree_util.tree_leaves(inputs)[0].shape[1]
    check_targets(targets, n_steps)
    check_loss(model, inputs, targets, loss, axes=2)

    # HeadSparse stores the selected heads' traces only, in the step recursion; an explicit
    # block of several steps keeps every head's records (snnplast/online/_head_gathered.py).
    gathered = GatheredHeadStep.build(runner) if block in (None, 1) else None
    block = resolve_block(runner, block, n_steps)
    if gathered is not None:
        carry = gathered.run(p, gathered.init(model, batch, key), inputs, targets, key,
                             n_steps).inner
    elif block > 1:
        carry = run_blocks(BlockedStep(runner, hoist=hoist, recompute=recompute, late=late),
                           p, carry,
                           inputs, targets, key, n_steps, block, trace_out=False, from_zero=True)
        carry = carry._replace(pending={})  # the blocks leave no direct term pending
    else:
        carry = run_steps(runner, p, carry, inputs, targets, key, n_steps,
                          contract_every=contract_every, hoist=hoist, late=late)
    grads = [g / batch for g in runner.gradients(p, carry)]
    if with_scores:
        return carry.loss / batch, runner.as_tree(grads), carry.out_sum
    return carry.loss / batch, runner.as_tree(grads)


def run_steps(runner: OnlineStep, p, carry, inputs, targets, key, n_steps: int, *,
              contract_every: int | None = None, hoist: bool = False, late: bool | None = None):
    """``n_steps`` steps of the step-by-step recursion, reading ``inputs [B, T, ...]`` at
    ``carry.t``.

    `contract_every`: steps whose trace contractions of the pairs that
    :func:`~snnplast.online.deferred_pairs` allows meet in one product
    (:func:`~snnplast.online.contract_terms`); ``None``: :data:`CONTRACT_EVERY`, ``1``: a
    product at every step. `hoist`: evaluate the input-only part of the step
    (:meth:`OnlineStep.hoist`) for a chunk of steps at once, before the chunk (chunks of
    `contract_every` steps, or :data:`CONTRACT_EVERY` when that is 1). `late`: where every
    traced pair's contraction is deferred, form the chunk's learning signals at its end, all
    steps in one product (:class:`~snnplast.online.LateSignal`); ``None``:
    :data:`~snnplast.online.LATE_SIGNAL`.
    """

    phi = runner.graph.phi_of(p)  # once, not at every step
    every = CONTRACT_EVERY if contract_every is None else contract_every
    defer = deferred_pairs(runner) if every > 1 and n_steps > 1 else frozenset()
    hoisting = hoist and runner.hoist_plan() is not None

    late = _blocked.LATE_SIGNAL if late is None else late
    lately = LateSignal(runner) if late and LateSignal.applies(runner, defer) else None

    def at(c):
        # Step t is read in place along the time axis (a time-major copy of the inputs would
        # grow with T).
        return tuple(jax.tree_util.tree_map(lambda a: at_time(a, c.t), z)
                     for z in (inputs, targets))

    def body(c, pre_t, defer=defer):
        # A step's key comes from the step count.
        x_t, y_t = at(c)
        if lately is not None and defer:
            return lately.step(p, c, x_t, y_t, jax.random.fold_in(key, c.t), phi, pre_t)
        return runner.step_terms(p, c, x_t, y_t, jax.random.fold_in(key, c.t), phi, defer,
                                 pre_t)

    def single_steps(c, length):
        """``length`` steps, each with its own trace products (no records)."""
        return jax.lax.scan(lambda c, _: (body(c, None, frozenset())[0], None), c, None,
                            length=length)[0]

    if not defer and not hoisting:
        return single_steps(carry, n_steps)

    def pre_of(c, length):
        """The chunk's input-only values, ``[length, B, ...]`` (None without hoisting)."""
        if not hoisting:
            return None
        x = jax.tree_util.tree_map(
            lambda a: jax.lax.dynamic_slice_in_dim(a, c.t, length, axis=1), inputs)
        return runner.hoist(p, x)

    def finish(c, terms, start, pre):
        if lately is not None:
            return lately.finish(p, c, terms, start.pending, at(start) + (_index(pre, 0),), phi)
        return c._replace(grad_phi=contract_terms(runner, c.grad_phi, terms)) if defer else c

    def chunk(c, length):
        pre = pre_of(c, length)
        c1, terms = jax.lax.scan(lambda c, i: body(c, _index(pre, i)), c, jnp.arange(length))
        return finish(c1, terms, c, pre)

    k = min(every if every > 1 else CONTRACT_EVERY, n_steps)
    full, rest = divmod(n_steps, k)
    if rest:
        # The steps beyond whole chunks first, each with its own products: as a shorter chunk
        # (before or after the loop) their records were kept beside the loop's buffers
        # (rlif, 256 neurons, batch 64, T=400: 11.6-12.1 MiB of scratch, against 8.4 at
        # T=384 or 416, where no steps are left over).
        carry = single_steps(carry, rest)
    if full > 1:
        # The records of a chunk live in buffers carried from chunk to chunk and written in
        # place: a scan's stacked outputs would be new zero-filled buffers for every chunk.
        shapes = jax.eval_shape(lambda c: body(c, _index(pre_of(c, k), 0))[1], carry)
        empty = jax.tree_util.tree_map(lambda a: jnp.zeros((k,) + a.shape, a.dtype), shapes)

        def full_chunk(state, _):
            c, bufs = state
            pre = pre_of(c, k)

            def record(state, i):
                c, bufs = state
                c, terms = body(c, _index(pre, i))
                bufs = jax.tree_util.tree_map(
                    lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, i, 0), bufs, terms)
                return (c, bufs), None

            (c1, bufs), _ = jax.lax.scan(record, (c, bufs), jnp.arange(k))
            return (finish(c1, bufs, c, pre), bufs), None

        (carry, _), _ = jax.lax.scan(full_chunk, (carry, empty), None, length=full)
    elif full:
        carry = chunk(carry, k)
    return carry


def _index(pre, i):
    """Step ``i``'s values of a chunk's hoisted values ``[K, B, ...]`` (``None`` stays)."""
    if pre is None:
        return None
    return [jax.lax.dynamic_index_in_dim(v, i, 0, keepdims=False) for v in pre]


def run_blocks(blocked: BlockedStep, p, carry, inputs, targets, key, n_steps: int, block: int,
               *, trace_out: bool = True, from_zero: bool = False):
    """``n_steps`` steps in blocks of ``block``: a shorter block first if they do not divide,
    then every full block in one loop.

    `trace_out`: whether the traces after the last block are wanted (a learner carries them
    on; a sequence's gradient does not need them: they are then left out only where the
    sequence is one block). `from_zero`: the incoming traces are zero (a sequence's start):
    the first block skips them, so they are never built.

    Why one loop even for the last block, which computes traces nobody reads when
    `trace_out` is false: a last block of its own, after the loop, made XLA keep its records
    beside the loop's (ralif, 256 neurons, batch 64, T=1600: 59.9 MiB of scratch instead of
    44.4; one trace copy is 24.75 MiB); the first block of its own, before the loop, does not.
    """
    k = min(block, n_steps)
    full, head = divmod(n_steps, k)
    if from_zero and not head:
        head, full = k, full - 1
    if head:
        carry = blocked.block(p, carry, inputs, targets, key, head, from_zero=from_zero,
                              trace_out=trace_out or full > 0)[0]
    if full:
        def body(c, _):
            return blocked.block(p, c, inputs, targets, key, k)[0], None

        carry, _ = jax.lax.scan(body, carry, None, length=full)
    return carry


def at_time(a, t):
    """``a[:, t]`` for a batch-major array, without copying the rest; ``a[:, 0]`` at every
    ``t`` where the time axis has length 1 (a target for every step)."""
    if a.shape[1] == 1:
        return a[:, 0]
    return jax.lax.dynamic_index_in_dim(a, t, axis=1, keepdims=False)


def check_targets(targets, n_steps: int) -> None:
    """Raise a one-line ValueError unless every leaf of ``targets`` is ``[B, T, ...]`` with
    ``T = n_steps`` or ``1`` (the same target at every step)."""
    for leaf in jax.tree_util.tree_leaves(targets):
        shape = jnp.shape(leaf)
        if len(shape) < 2 or shape[1] not in (1, n_steps):
            raise ValueError(f"targets must be [B, T, ...] with T = {n_steps} (the inputs' "
                             f"steps) or 1 (the same target at every step); got shape {shape}")


def online_sequence_gradients(model, inputs, targets, policy, loss, *, key=None, block=None):
    """Online gradient of one unbatched sequence (``inputs [T, ...]``)."""
    add_batch = lambda a: jnp.asarray(a)[None]
    _, grads = online_loss_and_grad(
        model, jax.tree_util.tree_map(add_batch, inputs),
        jax.tree_util.tree_map(add_batch, targets), policy, loss, key=key, block=block)
    return grads

