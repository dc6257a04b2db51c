//! Optimizers as graph rewrites: the update of every parameter appended to a graph that has
//! gradients, with optimizer state as inputs of role `optimizer_state` (initialised to zero).

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::autodiff::{Emitter, Names};
use crate::dtype::DType;
use crate::error::{IrError, Result};
use crate::graph::{Graph, Phase, Role, ValueId};
use crate::op::{BinaryFn, Init, Literal, Op, UnaryFn};
use crate::types::TensorType;
use crate::verify::debug_verify;

/// An optimizer and its hyper-parameters (constants in the graph).
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// SGD with (PyTorch-style) momentum: `b = μ b + g; p -= lr b`. No state when `momentum == 0`.
    Sgd { lr: f64, momentum: f64 },
    /// Adam (Kingma & Ba 2015) with bias correction.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019): Adam with weight decay decoupled from the gradient.
    AdamW {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl Optimizer {
    /// Adam with the paper's defaults (β1 0.9, β2 0.999, ε 1e-8).
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// AdamW with Adam's defaults and weight decay 0.01 (PyTorch's default).
    pub fn adamw(lr: f64) -> Self {
        Optimizer::AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    /// SGD with momentum 0.9.
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd { lr, momentum: 0.9 }
    }

    /// The name written on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
        }
    }
}

impl FromStr for Optimizer {
    type Err = IrError;
    /// `sgd`, `adam` or `adamw`, with default hyper-parameters and learning rate 1e-3.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(Optimizer::sgd(1e-3)),
            "adam" => Ok(Optimizer::adam(1e-3)),
            "adamw" => Ok(Optimizer::adamw(1e-3)),
            _ => Err(IrError::parse(
                "optimizer",
                s,
                "expected one of sgd, adam, adamw",
            )),
        }
    }
}

/// Appends `opt`'s update of every parameter with a gradient (phase `update`). With
/// `mixed_precision`, each 16-bit parameter gets an f32 master weight (optimizer state `<p>.master`,
/// initialised like the parameter: copy the parameter into it before the first step); the update
/// runs in f32 on the master weight and the parameter's new value is the master converted back.
/// The new value of every parameter and state is recorded in `training.updates` and output.
pub fn apply_optimizer(g: &Graph, opt: &Optimizer, mixed_precision: bool) -> Result<Graph> {
    if g.training.gradients.is_empty() {
        return Err(IrError::Graph(
            "the graph has no gradients: run autodiff before adding an optimizer".into(),
        ));
    }
    if let Some(&(p, _)) = g.training.updates.first() {
        return Err(IrError::Graph(format!(
            "the graph already updates `{}`: it has an optimizer",
            g.node(p).name
        )));
    }
    if mixed_precision
        && !g
            .training
            .gradients
            .iter()
            .any(|&(p, _)| is_half(g.ty(p).dtype))
    {
        return Err(IrError::Graph(
            "mixed precision needs 16-bit (bf16/f16) parameters; every parameter here is wider"
                .into(),
        ));
    }
    let mut out = g.clone();
    let mut names = Names::of(&out);
    let mut em = Emitter {
        g: &mut out,
        names: &mut names,
        phase: Phase::Update,
    };
    let mut up = Updater {
        em: &mut em,
        updates: Vec::new(),
        bias_corrections: BTreeMap::new(),
        step: None,
    };
    for &(p, gp) in &g.training.gradients {
        up.parameter(opt, p, gp, mixed_precision)?;
    }
    let updates = up.updates;
    for &(_, v) in &updates {
        out.outputs.push(v);
    }
    out.training.updates = updates;
    debug_verify(&out);
    Ok(out)
}

fn is_half(d: DType) -> bool {
    matches!(d, DType::BF16 | DType::F16)
}

struct Updater<'a, 'b> {
    em: &'a mut Emitter<'b>,
    updates: Vec<(ValueId, ValueId)>,
    /// Adam's `(1 - β1^t, 1 - β2^t)` per dtype, computed once per step.
    bias_corrections: BTreeMap<DType, (ValueId, ValueId)>,
    /// The step counter state and its incremented value.
    step: Option<ValueId>,
}

impl Updater<'_, '_> {
    fn node(&mut self, name: String, op: Op, operands: Vec<ValueId>) -> Result<ValueId> {
        self.em.emit(name, op, operands, None)
    }

    fn bin(&mut self, name: String, func: BinaryFn, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.node(name, Op::Binary { func }, vec![a, b])
    }

    fn constant(&mut self, name: String, value: f64, ty: &TensorType) -> Result<ValueId> {
        self.em.emit(
            name,
            Op::Constant {
                value: Literal::Splat(value),
            },
            vec![],
            Some(ty.clone()),
        )
    }

    /// `a * c` for a constant `c`.
    fn scale(&mut self, name: String, a: ValueId, c: f64) -> Result<ValueId> {
        let ty = self.em.g.ty(a).clone();
        let k = self.constant(format!("{name}.c"), c, &ty)?;
        self.bin(name, BinaryFn::Mul, a, k)
    }

    /// A zero-initialised optimizer state shaped `ty`.
    fn state(&mut self, name: String, ty: &TensorType, init: Option<Init>) -> Result<ValueId> {
        let v = self
            .em
            .emit(name, Op::Input { init }, vec![], Some(ty.clone()))?;
        self.em.g.nodes[v.index()].role = Role::OptimizerState;
        Ok(v)
    }

    fn parameter(&mut self, opt: &Optimizer, p: ValueId, gp: ValueId, mixed: bool) -> Result<()> {
        let pn = self.em.g.node(p).clone();
        let name = pn.name.clone();
        let master = mixed && is_half(pn.ty.dtype);
        let (w, grad) = if master {
            let init = match &pn.op {
                Op::Input { init } => init.clone(),
                _ => None,
            };
            let f32_ty = pn.ty.with_dtype(DType::F32);
            let m = self.state(format!("{name}.master"), &f32_ty, init)?;
            let g32 = self.em.emit(
                format!("{name}.update.grad_f32"),
                Op::Convert,
                vec![gp],
                Some(f32_ty),
            )?;
            (m, g32)
        } else {
            (p, gp)
        };
        // The new value is `<p>.update.new`; with a master weight that name goes to the converted
        // parameter and the master's new value is `<p>.update.new_master`.
        let out_name = if master {
            format!("{name}.update.new_master")
        } else {
            format!("{name}.update.new")
        };
        let new_w = match *opt {
            Optimizer::Sgd { lr, momentum } => self.sgd(&name, out_name, w, grad, lr, momentum)?,
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => self.adam(&name, out_name, w, grad, [lr, beta1, beta2, eps, 0.0])?,
            Optimizer::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => self.adam(
                &name,
                out_name,
                w,
                grad,
                [lr, beta1, beta2, eps, weight_decay],
            )?,
        };
        if master {
            self.updates.push((w, new_w));
            let back = self.em.emit(
                format!("{name}.update.new"),
                Op::Convert,
                vec![new_w],
                Some(pn.ty.clone()),
            )?;
            self.updates.push((p, back));
        } else {
            self.updates.push((p, new_w));
        }
        Ok(())
    }

    fn sgd(
        &mut self,
        name: &str,
        out_name: String,
        w: ValueId,
        g: ValueId,
        lr: f64,
        mu: f64,
    ) -> Result<ValueId> {
        let dir = if mu == 0.0 {
            g
        } else {
            let ty = self.em.g.ty(w).clone();
            let buf = self.state(
                format!("{name}.momentum"),
                &ty,
                Some(Init::Fill { value: 0.0 }),
            )?;
            let decayed = self.scale(format!("{name}.update.momentum_decay"), buf, mu)?;
            let nb = self.bin(format!("{name}.update.momentum"), BinaryFn::Add, decayed, g)?;
            self.updates.push((buf, nb));
            nb
        };
        let step = self.scale(format!("{name}.update.step"), dir, lr)?;
        self.bin(out_name, BinaryFn::Sub, w, step)
    }

    /// Adam or AdamW (`h = [lr, β1, β2, ε, weight decay]`).
    fn adam(
        &mut self,
        name: &str,
        out_name: String,
        w: ValueId,
        g: ValueId,
        h: [f64; 5],
    ) -> Result<ValueId> {
        let [lr, b1, b2, eps, wd] = h;
        let ty = self.em.g.ty(w).clone();
        let zero = Some(Init::Fill { value: 0.0 });
        let m = self.state(format!("{name}.adam_m"), &ty, zero.clone())?;
        let v = self.state(format!("{name}.adam_v"), &ty, zero)?;
        let u = format!("{name}.update");
        // m' = β1 m + (1 - β1) g;  v' = β2 v + (1 - β2) g²
        let m1 = self.scale(format!("{u}.m_decay"), m, b1)?;
        let m2 = self.scale(format!("{u}.m_grad"), g, 1.0 - b1)?;
        let nm = self.bin(format!("{u}.m"), BinaryFn::Add, m1, m2)?;
        let gg = self.bin(format!("{u}.grad_sq"), BinaryFn::Mul, g, g)?;
        let v1 = self.scale(format!("{u}.v_decay"), v, b2)?;
        let v2 = self.scale(format!("{u}.v_grad"), gg, 1.0 - b2)?;
        let nv = self.bin(format!("{u}.v"), BinaryFn::Add, v1, v2)?;
        self.updates.push((m, nm));
        self.updates.push((v, nv));
        // Bias correction: m̂ = m' / (1 - β1^t), v̂ = v' / (1 - β2^t).
        let (c1, c2) = self.bias_correction(ty.dtype, b1, b2)?;
        let dims: Vec<u64> = ty.dims().to_vec();
        let bc = |s: &mut Self, what: &str, c: ValueId| {
            s.em.emit(
                format!("{u}.{what}"),
                Op::Broadcast { dims: vec![] },
                vec![c],
                Some(TensorType::new(ty.dtype, dims.clone())),
            )
        };
        let c1b = bc(self, "bias1", c1)?;
        let c2b = bc(self, "bias2", c2)?;
        let mhat = self.bin(format!("{u}.m_hat"), BinaryFn::Div, nm, c1b)?;
        let vhat = self.bin(format!("{u}.v_hat"), BinaryFn::Div, nv, c2b)?;
        let root = self.node(
            format!("{u}.v_sqrt"),
            Op::Unary {
                func: UnaryFn::Sqrt,
            },
            vec![vhat],
        )?;
        let epsv = self.constant(format!("{u}.eps"), eps, &ty)?;
        let denom = self.bin(format!("{u}.denom"), BinaryFn::Add, root, epsv)?;
        let mut dir = self.bin(format!("{u}.direction"), BinaryFn::Div, mhat, denom)?;
        if wd != 0.0 {
            // AdamW: decay the weight directly, not through the gradient.
            let decay = self.scale(format!("{u}.decay"), w, wd)?;
            dir = self.bin(format!("{u}.direction_wd"), BinaryFn::Add, dir, decay)?;
        }
        let step = self.scale(format!("{u}.step"), dir, lr)?;
        self.bin(out_name, BinaryFn::Sub, w, step)
    }

    /// `(1 - β1^t, 1 - β2^t)` for the step `t` after this one, as `dtype` scalars; the step
    /// counter (an f32 state `optimizer.step`, from 0) is made on first use.
    fn bias_correction(&mut self, dtype: DType, b1: f64, b2: f64) -> Result<(ValueId, ValueId)> {
        if let Some(&c) = self.bias_corrections.get(&dtype) {
            return Ok(c);
        }
        let scalar = TensorType::scalar(DType::F32);
        let t = match self.step {
            Some(t) => t,
            None => {
                let s = self.state(
                    "optimizer.step".into(),
                    &scalar,
                    Some(Init::Fill { value: 0.0 }),
                )?;
                let one = self.constant("optimizer.step.one".into(), 1.0, &scalar)?;
                let t = self.bin("optimizer.step.next".into(), BinaryFn::Add, s, one)?;
                self.updates.push((s, t));
                self.step = Some(t);
                t
            }
        };
        let mut pair = [ValueId(0); 2];
        for (k, beta) in [b1, b2].into_iter().enumerate() {
            let pre = format!("optimizer.bias{}.{}", k + 1, dtype);
            let b = self.constant(format!("{pre}.beta"), beta, &scalar)?;
            let pw = self.bin(format!("{pre}.pow"), BinaryFn::Pow, b, t)?;
            let one = self.constant(format!("{pre}.one"), 1.0, &scalar)?;
            let c = self.bin(pre.clone(), BinaryFn::Sub, one, pw)?;
            pair[k] = if dtype == DType::F32 {
                c
            } else {
                self.em.emit(
                    format!("{pre}.cast"),
                    Op::Convert,
                    vec![c],
                    Some(TensorType::scalar(dtype)),
                )?
            };
        }
        let c = (pair[0], pair[1]);
        self.bias_corrections.insert(dtype, c);
        Ok(c)
    }
}
