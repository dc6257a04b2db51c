//! The executor's schedule, computed once per graph and output list: which nodes run, which
//! values each step frees, and which operand a step may overwrite because its value dies there.
//! [`Prepared`] keeps it (and the verification) for repeated runs, so that a warm run only
//! executes kernels; [`crate::execute`] prepares and runs once.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use shardc_ir::{Graph, Node, Op, TensorType, ValueId};

use crate::error::RuntimeError;
use crate::executor::{is_mesh_op, lifetimes, DeviceOps, Lifetimes, SingleDevice};
use crate::kernels;
use crate::tensor::Tensor;

/// One node the run computes (or is fed).
struct Step {
    node: u32,
    /// The position of the node among the graph's inputs, for an input node.
    input: Option<u32>,
    /// Computed by the device (collectives, `axis_index`, send/recv), operands by value.
    mesh: bool,
    /// The operand position whose value dies here and that the kernel may overwrite
    /// (`kernels::eval_owned`), when the value is owned at run time.
    donor: Option<u8>,
    /// Values last read by this step and not wanted, each once: freed after it.
    frees: Vec<u32>,
}

/// What a run of one graph for one list of wanted values does, node by node.
pub(crate) struct Schedule {
    steps: Vec<Step>,
    /// Every graph input's position, in graph order (the nodes the inputs feed).
    inputs: Vec<u32>,
    /// The graph inputs (by their position among the inputs) that nothing reads: dropped as
    /// the run starts.
    unused_inputs: Vec<u32>,
}

impl Schedule {
    /// The schedule of a run of `g` (verified) computing `wanted`; `effects`: collectives run
    /// even when nothing needs them (the mesh executor).
    pub(crate) fn new(g: &Graph, wanted: &[ValueId], effects: bool) -> Result<Self, RuntimeError> {
        let n = g.nodes.len();
        if let Some(w) = wanted.iter().find(|w| w.index() >= n) {
            return Err(RuntimeError::Invalid(format!(
                "wanted value {w} does not exist (graph `{}` has {n} nodes)",
                g.name
            )));
        }
        let Lifetimes {
            needed,
            is_wanted,
            last_use,
        } = lifetimes(g, wanted, effects);
        let mut steps = Vec::new();
        let mut inputs = Vec::new();
        let mut unused_inputs = Vec::new();
        for (i, node) in g.nodes.iter().enumerate() {
            let input = matches!(node.op, Op::Input { .. }).then(|| {
                inputs.push(i as u32);
                inputs.len() as u32 - 1
            });
            if !needed[i] {
                unused_inputs.extend(input);
                continue;
            }
            let dies_here = |o: &ValueId| last_use[o.index()] == Some(i) && !is_wanted[o.index()];
            let mut frees: Vec<u32> = Vec::new();
            for o in node.operands.iter().filter(|o| dies_here(o)) {
                if !frees.contains(&(o.index() as u32)) {
                    frees.push(o.index() as u32);
                }
            }
            let mesh = input.is_none() && is_mesh_op(&node.op);
            let donor = if input.is_none() && !mesh && kernels::overwrites_operand(&node.op) {
                donor(g, node, &frees)
            } else {
                None
            };
            if let Some(p) = donor {
                let d = node.operands[p as usize].index() as u32;
                frees.retain(|&f| f != d);
            }
            steps.push(Step {
                node: i as u32,
                input,
                mesh,
                donor,
                frees,
            });
        }
        Ok(Schedule {
            steps,
            inputs,
            unused_inputs,
        })
    }

    /// Runs the schedule on `inputs` (one per graph input, borrowed or owned) and returns the
    /// values of `wanted` (the list the schedule was made for), in order.
    pub(crate) fn run(
        &self,
        g: &Graph,
        inputs: Vec<Cow<'_, Tensor>>,
        wanted: &[ValueId],
        dev: &mut dyn DeviceOps,
    ) -> Result<Vec<Tensor>, RuntimeError> {
        self.check_inputs(g, &inputs)?;
        let mut fed: Vec<Option<Cow<'_, Tensor>>> = inputs.into_iter().map(Some).collect();
        for &k in &self.unused_inputs {
            fed[k as usize] = None;
        }
        let mut values: Vec<Option<Cow<'_, Tensor>>> = vec![None; g.nodes.len()];
        // The freed values' buffers serve this run only (also when it ends early with an error).
        let pool_guard = kernels::pool::ClearOnDrop;
        for step in &self.steps {
            let i = step.node as usize;
            let node = &g.nodes[i];
            dev.before_node(ValueId(step.node), node)?;
            let result = if let Some(k) = step.input {
                fed[k as usize]
                    .take()
                    .ok_or_else(|| RuntimeError::Invalid(format!("input {k} fed twice")))?
            } else if step.mesh {
                Cow::Owned(Self::mesh_step(node, &step.frees, &mut values, dev)?)
            } else {
                Cow::Owned(kernel_step(node, step.donor, &mut values)?)
            };
            if !has_type(&result, &node.ty) {
                return Err(RuntimeError::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "computed a value of type {}, the node declares {}",
                        result.ty(),
                        node.ty
                    ),
                ));
            }
            values[i] = Some(result);
            for &f in &step.frees {
                if let Some(Cow::Owned(t)) = values[f as usize].take() {
                    kernels::pool::recycle(t);
                }
            }
        }
        drop(pool_guard);
        let mut out = Vec::with_capacity(wanted.len());
        for (k, w) in wanted.iter().enumerate() {
            let again = wanted[k + 1..].contains(w);
            let v = if again {
                values[w.index()].as_deref().cloned()
            } else {
                values[w.index()].take().map(Cow::into_owned)
            };
            out.push(v.ok_or_else(|| {
                RuntimeError::Invalid(format!("value {w} was not computed (invariant)"))
            })?);
        }
        Ok(out)
    }

    fn check_inputs(&self, g: &Graph, inputs: &[Cow<'_, Tensor>]) -> Result<(), RuntimeError> {
        if self.inputs.len() != inputs.len() {
            return Err(RuntimeError::Invalid(format!(
                "graph `{}` has {} inputs, {} tensors were given",
                g.name,
                self.inputs.len(),
                inputs.len()
            )));
        }
        for (i, (&v, t)) in self.inputs.iter().zip(inputs).enumerate() {
            let node = &g.nodes[v as usize];
            if !has_type(t, &node.ty) {
                return Err(RuntimeError::Input {
                    index: i,
                    name: node.name.clone(),
                    message: format!("expected {}, got {}", node.ty, t.ty()),
                });
            }
        }
        Ok(())
    }

    /// A device op: operands by value, moved out where this is their last use and the node
    /// reads them once.
    fn mesh_step(
        node: &Node,
        frees: &[u32],
        values: &mut [Option<Cow<'_, Tensor>>],
        dev: &mut dyn DeviceOps,
    ) -> Result<Tensor, RuntimeError> {
        let mut owned = Vec::with_capacity(node.operands.len());
        for o in &node.operands {
            let once = node.operands.iter().filter(|&p| p == o).count() == 1;
            let t = if once && frees.contains(&(o.index() as u32)) {
                values[o.index()].take().map(Cow::into_owned)
            } else {
                values[o.index()].as_deref().cloned()
            };
            owned.push(t.ok_or_else(|| missing(node, o))?);
        }
        dev.mesh_op(node, owned)
    }
}

/// The operand a kernel may overwrite: the first whose value dies at this node (in `frees`),
/// that the node reads once, and whose storage fits the result (same dtype and element count).
fn donor(g: &Graph, node: &Node, frees: &[u32]) -> Option<u8> {
    let fits = |t: &TensorType| {
        t.dtype == node.ty.dtype && t.shape.checked_elements() == node.ty.shape.checked_elements()
    };
    node.operands.iter().enumerate().find_map(|(p, o)| {
        let once = node.operands.iter().filter(|&q| q == o).count() == 1;
        (p < 8 && once && frees.contains(&(o.index() as u32)) && fits(g.ty(*o))).then_some(p as u8)
    })
}

fn missing(node: &Node, o: &ValueId) -> RuntimeError {
    RuntimeError::node(
        &node.name,
        node.op.name(),
        format!("operand {o} was freed or never computed (invariant)"),
    )
}

/// Whether `t` is of type `ty` (without building a `TensorType` per check).
fn has_type(t: &Tensor, ty: &TensorType) -> bool {
    t.dtype() == ty.dtype
        && t.shape().len() == ty.dims().len()
        && t.shape()
            .iter()
            .zip(ty.dims())
            .all(|(&a, &b)| a as u64 == b)
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map_or_else(|| "unknown panic".to_string(), |s| s.to_string()),
    }
}

/// A local kernel: over the donor operand's storage when it is owned and the kernel can, else
/// into a new value.
fn kernel_step(
    node: &Node,
    donor: Option<u8>,
    values: &mut [Option<Cow<'_, Tensor>>],
) -> Result<Tensor, RuntimeError> {
    let err = |m: String| RuntimeError::node(&node.name, node.op.name(), m);
    let panicked = |p| err(format!("kernel panicked: {}", panic_message(p)));
    if let Some(p) = donor.map(usize::from) {
        let d = node.operands[p].index();
        match values[d].take() {
            Some(Cow::Owned(x)) => {
                let others: Vec<&Tensor> = node
                    .operands
                    .iter()
                    .enumerate()
                    .filter(|&(q, _)| q != p)
                    .map(|(_, o)| values[o.index()].as_deref().ok_or_else(|| missing(node, o)))
                    .collect::<Result<_, _>>()?;
                match catch_unwind(AssertUnwindSafe(|| {
                    kernels::eval_owned(node, x, p, &others)
                })) {
                    Ok(Ok(Ok(t))) => return Ok(t),
                    // No in-place form for these operands: the general kernel reads it.
                    Ok(Ok(Err(x))) => values[d] = Some(Cow::Owned(x)),
                    Ok(Err(m)) => return Err(err(m)),
                    Err(p) => return Err(panicked(p)),
                }
            }
            // Borrowed (a caller's input): read in place, never overwritten.
            other => values[d] = other,
        }
    }
    let operands: Vec<&Tensor> = node
        .operands
        .iter()
        .map(|o| values[o.index()].as_deref().ok_or_else(|| missing(node, o)))
        .collect::<Result<_, _>>()?;
    let out = catch_unwind(AssertUnwindSafe(|| kernels::eval(node, &operands)))
        .map_err(panicked)?
        .map_err(err)?;
    if let Some(p) = donor.map(usize::from) {
        // The donor was not overwritten: it dies here all the same.
        if let Some(Cow::Owned(t)) = values[node.operands[p].index()].take() {
            kernels::pool::recycle(t);
        }
    }
    Ok(out)
}

/// A graph verified and scheduled once for repeated runs on one CPU device (the reference
/// executor): each [`run`](Prepared::run) only checks the inputs' types and executes. Runs give
/// the same values as [`crate::execute`], which prepares and runs once.
pub struct Prepared<'g> {
    graph: &'g Graph,
    wanted: Vec<ValueId>,
    schedule: Schedule,
}

impl<'g> Prepared<'g> {
    /// Verifies `g` and schedules runs computing its outputs.
    pub fn new(g: &'g Graph) -> Result<Self, RuntimeError> {
        Self::for_values(g, &g.outputs)
    }

    /// Verifies `g` and schedules runs computing the values `wanted` (any values, also
    /// intermediate ones); only the nodes these depend on run.
    pub fn for_values(g: &'g Graph, wanted: &[ValueId]) -> Result<Self, RuntimeError> {
        shardc_ir::verify(g)?;
        Ok(Prepared {
            graph: g,
            wanted: wanted.to_vec(),
            schedule: Schedule::new(g, wanted, false)?,
        })
    }

    /// Runs the graph on `inputs` (in the order of the graph's inputs, borrowed: the caller
    /// keeps them) and returns the wanted values in order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        self.schedule.run(
            self.graph,
            inputs.iter().map(Cow::Borrowed).collect(),
            &self.wanted,
            &mut SingleDevice,
        )
    }
}

#[cfg(test)]
mod tests {
    use shardc_ir::{BinaryFn, DType, Literal, UnaryFn};

    use super::*;
    use crate::executor::{execute, execute_values};
    use crate::random_inputs;

    /// `reshape(pow(tanh(x) * c - x, 3) / x)`: every intermediate dies at its one user, so the
    /// kernels overwrite their operands; `x` is the caller's and must stay as it was.
    fn chain(dtype: DType) -> Graph {
        let mut g = Graph::new("chain");
        let ty = TensorType::new(dtype, vec![4, 6]);
        let x = g
            .push("x", Op::Input { init: None }, vec![], Some(ty.clone()))
            .unwrap();
        let c = g
            .push(
                "c",
                Op::Constant {
                    value: Literal::Splat(0.75),
                },
                vec![],
                Some(ty.clone()),
            )
            .unwrap();
        let three = g
            .push(
                "three",
                Op::Constant {
                    value: Literal::Splat(3.0),
                },
                vec![],
                Some(ty),
            )
            .unwrap();
        let t = g
            .push(
                "t",
                Op::Unary {
                    func: UnaryFn::Tanh,
                },
                vec![x],
                None,
            )
            .unwrap();
        let m = g
            .push(
                "m",
                Op::Binary {
                    func: BinaryFn::Mul,
                },
                vec![t, c],
                None,
            )
            .unwrap();
        let s = g
            .push(
                "s",
                Op::Binary {
                    func: BinaryFn::Sub,
                },
                vec![m, x],
                None,
            )
            .unwrap();
        let p = g
            .push(
                "p",
                Op::Binary {
                    func: BinaryFn::Pow,
                },
                vec![s, three],
                None,
            )
            .unwrap();
        let d = g
            .push(
                "d",
                Op::Binary {
                    func: BinaryFn::Div,
                },
                vec![p, x],
                None,
            )
            .unwrap();
        let out_ty = TensorType::new(dtype, vec![24]);
        let r = g.push("r", Op::Reshape, vec![d], Some(out_ty)).unwrap();
        g.outputs.push(r);
        g
    }

    #[test]
    fn in_place_kernels_give_the_values_of_the_out_of_place_ones() {
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            let g = chain(dtype);
            let inputs = random_inputs(&g, 7);
            let kept = inputs.clone();
            // Wanting every value keeps each alive: no operand is overwritten.
            let all: Vec<ValueId> = g.ids().collect();
            let reference = execute_values(&g, &inputs, &all).unwrap();
            let out = execute(&g, &inputs).unwrap();
            assert_eq!(out[0], *reference.last().unwrap(), "{dtype:?}");
            assert_eq!(inputs, kept, "the caller's inputs are untouched");
            let schedule = Schedule::new(&g, &g.outputs, false).unwrap();
            let donors = schedule.steps.iter().filter(|s| s.donor.is_some()).count();
            assert!(
                donors >= 4,
                "{dtype:?}: only {donors} steps overwrite an operand"
            );
        }
    }

    #[test]
    fn a_prepared_graph_runs_repeatedly_and_checks_its_inputs() {
        let g = chain(DType::F32);
        let prepared = Prepared::new(&g).unwrap();
        let inputs = random_inputs(&g, 3);
        let first = prepared.run(&inputs).unwrap();
        assert_eq!(prepared.run(&inputs).unwrap(), first);
        assert_eq!(first, execute(&g, &inputs).unwrap());
        let wrong = Tensor::full(&TensorType::new(DType::F32, vec![4, 5]), 1.0).unwrap();
        let e = prepared.run(&[wrong]).unwrap_err().to_string();
        assert!(e.contains("f32[4,6]") && e.contains("f32[4,5]"), "{e}");
        assert!(prepared
            .run(&[])
            .unwrap_err()
            .to_string()
            .contains("1 inputs, 0"));
    }
}
