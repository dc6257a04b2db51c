//! The peak memory of running a graph, from its liveness in the executor's own order.
//!
//! The executor (`executor::run_graph`) holds every input tensor from the start (it is handed
//! them all), runs the needed nodes in graph order, and frees each value after its last use
//! unless it is wanted; while a node runs, its operands and its result are live together. This
//! module replays that schedule over the declared types, without running anything, so that a
//! caller can refuse a graph that would exhaust the machine before allocating. Kernels'
//! scratch buffers are not counted (they are at most a few operands' size).

use shardc_ir::{Graph, Op, ValueId};

/// The bytes of every input of `g` (what a caller holds to feed it). Saturates at `u64::MAX`.
pub fn input_bytes(g: &Graph) -> u64 {
    g.nodes
        .iter()
        .filter(|x| matches!(x.op, Op::Input { .. }))
        .fold(0u64, |acc, x| acc.saturating_add(x.ty.size_bytes()))
}

/// The most bytes the executor holds at once when it runs `g` for `g.outputs` (the reference
/// executor's schedule, see the module doc). Saturates at `u64::MAX`.
pub fn peak_bytes(g: &Graph) -> u64 {
    peak_bytes_for(g, &g.outputs, false)
}

/// The same for one device of a mesh run of the program `g`: every collective runs, needed or
/// not, so that every device takes part in it (the mesh executor's rule).
pub fn device_peak_bytes(g: &Graph) -> u64 {
    peak_bytes_for(g, &g.outputs, true)
}

/// The executor's peak when it computes `wanted`; `all_effects`: collectives run even when
/// nothing needs them (the mesh executor).
pub fn peak_bytes_for(g: &Graph, wanted: &[ValueId], all_effects: bool) -> u64 {
    let crate::executor::Lifetimes {
        needed,
        is_wanted,
        last_use,
    } = crate::executor::lifetimes(g, wanted, all_effects);
    let bytes = |i: usize| g.nodes[i].ty.size_bytes();
    // Every input is held from the start: the executor is given them all.
    let mut live = input_bytes(g);
    let mut peak = live;
    for (i, node) in g.nodes.iter().enumerate() {
        let is_input = matches!(node.op, Op::Input { .. });
        if !needed[i] {
            if is_input {
                // Dropped unused as the executor passes it.
                live = live.saturating_sub(bytes(i));
            }
            continue;
        }
        if !is_input {
            live = live.saturating_add(bytes(i));
            peak = peak.max(live);
        }
        let mut freed: Vec<usize> = node
            .operands
            .iter()
            .map(|o| o.index())
            .filter(|&o| last_use[o] == Some(i) && !is_wanted[o])
            .collect();
        freed.sort_unstable();
        freed.dedup();
        for o in freed {
            live = live.saturating_sub(bytes(o));
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardc_ir::{BinaryFn, DType, TensorType};

    fn vector(g: &mut Graph, name: &str, len: u64) -> ValueId {
        let ty = TensorType::new(DType::F32, vec![len]);
        g.push(name, Op::Input { init: None }, vec![], Some(ty))
            .unwrap()
    }

    #[test]
    fn a_chain_holds_two_values_at_once() {
        // x → a → b → c, each 400 bytes: while b is computed, a and b are live (x is freed).
        let mut g = Graph::new("chain");
        let x = vector(&mut g, "x", 100);
        let add = |g: &mut Graph, name: &str, v: ValueId| {
            g.push(
                name,
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![v, v],
                None,
            )
            .unwrap()
        };
        let a = add(&mut g, "a", x);
        let b = add(&mut g, "b", a);
        let c = add(&mut g, "c", b);
        g.outputs.push(c);
        assert_eq!(peak_bytes(&g), 800);
    }

    #[test]
    fn a_value_lives_until_its_last_consumer_and_outputs_to_the_end() {
        // x; a = x+x; b = a+a; c = a+b (a lives until c); outputs a and c.
        let mut g = Graph::new("fan");
        let x = vector(&mut g, "x", 100);
        let op = |g: &mut Graph, name: &str, l: ValueId, r: ValueId| {
            g.push(
                name,
                Op::Binary {
                    func: BinaryFn::Add,
                },
                vec![l, r],
                None,
            )
            .unwrap()
        };
        let a = op(&mut g, "a", x, x);
        let b = op(&mut g, "b", a, a);
        let c = op(&mut g, "c", a, b);
        g.outputs = vec![a, c];
        // At c: a (wanted), b and c live: 1200 bytes.
        assert_eq!(peak_bytes(&g), 1200);
        // A value nobody needs is never computed.
        let mut h = g.clone();
        h.outputs = vec![a];
        assert_eq!(peak_bytes(&h), 800);
    }
}
