//! The e-graph of sharded variants (egg): one e-class per tensor value, one e-node per sharding
//! the value takes (a *variant*, computed by its op from the operands' e-classes), and reshard
//! e-nodes that convert the value into a sharding a consumer needs.
//!
//! The class analysis keeps each value's current (most refined) variant: propagation only ever
//! refines a value's sharding, so the later variant is the join of the earlier ones. The
//! propagation engine reads every sharding from here; the fixpoint itself is driven by the
//! engine's own worklist, not by egg's rewrite runner (rebuilding after each rule application
//! would be far too slow for graphs of tens of thousands of nodes).

use egg::{Analysis, DidMerge, EGraph, Id, Language};
use shardc_ir::{Sharding, ValueId};

use crate::reason::Reason;

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ShardNode {
    /// Variant `variant` (an index into [`Variants::records`]) of a value, computed by the
    /// value's op from the operand e-classes `operands`.
    Variant { variant: u32, operands: Vec<Id> },
    /// The value of e-class `source`, resharded to variant `variant`'s sharding.
    Reshard { variant: u32, source: [Id; 1] },
}

impl Language for ShardNode {
    type Discriminant = (u8, u32);

    fn discriminant(&self) -> Self::Discriminant {
        match self {
            ShardNode::Variant { variant, .. } => (0, *variant),
            ShardNode::Reshard { variant, .. } => (1, *variant),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
            && self.children().len() == other.children().len()
    }

    fn children(&self) -> &[Id] {
        match self {
            ShardNode::Variant { operands, .. } => operands,
            ShardNode::Reshard { source, .. } => source,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            ShardNode::Variant { operands, .. } => operands,
            ShardNode::Reshard { source, .. } => source,
        }
    }
}

/// One variant: a value under a sharding, and why it has it.
#[derive(Clone, Debug)]
pub(crate) struct VariantRecord {
    pub value: ValueId,
    pub sharding: Sharding,
    /// User priority of the strongest annotation it derives from (`u32::MAX`: none).
    pub priority: u32,
    pub reason: Reason,
}

/// The analysis: the variant table, and per e-class the current variant.
#[derive(Debug, Default)]
pub(crate) struct Variants {
    pub records: Vec<VariantRecord>,
}

/// Per e-class: the current variant, or `None` for a class of reshard nodes only (never the
/// case for a value's class, which starts from a variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Current(pub Option<u32>);

impl Analysis<ShardNode> for Variants {
    type Data = Current;

    fn make(_egraph: &mut EGraph<ShardNode, Self>, enode: &ShardNode, _id: Id) -> Current {
        match enode {
            ShardNode::Variant { variant, .. } => Current(Some(*variant)),
            // A reshard is what a consumer sees, not what the value is.
            ShardNode::Reshard { .. } => Current(None),
        }
    }

    fn merge(&mut self, a: &mut Current, b: Current) -> DidMerge {
        // Variants are numbered in the order propagation derives them, each refining the last
        // of its value: the higher number is the join.
        let joined = match (a.0, b.0) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        let did = DidMerge(joined != a.0, joined != b.0);
        a.0 = joined;
        did
    }
}

/// The e-graph of one graph's variants.
pub(crate) struct VariantGraph {
    pub egraph: EGraph<ShardNode, Variants>,
    /// The e-class of each value (`class[v]`, maybe not canonical).
    pub class: Vec<Id>,
}

impl VariantGraph {
    pub fn new() -> Self {
        VariantGraph {
            egraph: EGraph::new(Variants::default()),
            class: Vec::new(),
        }
    }

    /// Adds `record` as a variant of its value, computed from `operands`' classes, and makes it
    /// part of the value's class (creating the class for a value's first variant).
    pub fn add_variant(&mut self, record: VariantRecord, operands: &[ValueId]) -> u32 {
        let variant = self.egraph.analysis.records.len() as u32;
        let v = record.value.index();
        self.egraph.analysis.records.push(record);
        let operands = operands.iter().map(|o| self.class[o.index()]).collect();
        let id = self.egraph.add(ShardNode::Variant { variant, operands });
        if v < self.class.len() {
            self.egraph.union(self.class[v], id);
        } else {
            debug_assert_eq!(v, self.class.len(), "invariant: values are added in order");
            self.class.push(id);
        }
        variant
    }

    /// Adds a reshard of value `v` to `sharding` (what a consumer needs).
    pub fn add_reshard(&mut self, v: ValueId, sharding: Sharding, reason: Reason) {
        let variant = self.egraph.analysis.records.len() as u32;
        self.egraph.analysis.records.push(VariantRecord {
            value: v,
            sharding,
            priority: u32::MAX,
            reason,
        });
        let source = self.class[v.index()];
        let id = self.egraph.add(ShardNode::Reshard {
            variant,
            source: [source],
        });
        self.egraph.union(source, id);
    }

    /// The current variant of `v`.
    pub fn current(&self, v: ValueId) -> &VariantRecord {
        let Current(c) = self.egraph[self.class[v.index()]].data;
        let c = c.expect("invariant: a value's class holds at least one variant");
        &self.egraph.analysis.records[c as usize]
    }

    /// Every variant and reshard of `v`, in the order they were derived.
    pub fn variants(&self, v: ValueId) -> Vec<&VariantRecord> {
        let mut ids: Vec<u32> = self.egraph[self.class[v.index()]]
            .nodes
            .iter()
            .map(|n| n.discriminant().1)
            .collect();
        ids.sort_unstable();
        ids.iter()
            .map(|&i| &self.egraph.analysis.records[i as usize])
            .collect()
    }
}
