//! Importer behaviour on small hand-built models: every unsupported operator reported at once,
//! external data confined to the model's folder, dynamic dims named, shapes folded.

use prost::Message;

use super::proto::{
    tensor_proto::{DataLocation, DataType},
    tensor_shape_proto::{dimension::Value as Dim, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use super::{import_bytes, OnnxOptions};
use crate::op::Op;

fn value(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(d.clone()),
                denotation: None,
            })
            .collect(),
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(shape),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input_dims: &[Dim],
    output: &str,
) -> Vec<u8> {
    let g = GraphProto {
        name: Some("m".into()),
        node: nodes,
        initializer: inits,
        input: vec![value("x", input_dims)],
        output: vec![value(output, &[])],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(g),
        ..Default::default()
    }
    .encode_to_vec()
}

fn ints(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

#[test]
fn every_unsupported_operator_is_listed_with_its_count() {
    let m = model(
        vec![
            node("Foo", &["x"], &["a"]),
            node("Relu", &["a"], &["b"]),
            node("Foo", &["b"], &["c"]),
            node("Bar", &["c"], &["y"]),
        ],
        vec![],
        &[Dim::DimValue(4)],
        "y",
    );
    let e = import_bytes(&m, None, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 operators") && e.contains("Bar (1 node)") && e.contains("Foo (2 nodes)"),
        "{e}"
    );
}

#[test]
fn shapes_fold_into_a_static_reshape_and_dynamic_dims_need_a_size() {
    // y = Reshape(x, Concat(Shape(x)[0:1], [-1])): the target shape is folded at import time.
    let nodes = vec![
        node("Shape", &["x"], &["s"]),
        node("Slice", &["s", "zero", "one"], &["first"]),
        node("Concat", &["first", "minus_one"], &["target"]),
        node("Reshape", &["x", "target"], &["y"]),
    ];
    let mut concat = nodes;
    concat[2].attribute.push(super::proto::AttributeProto {
        name: Some("axis".into()),
        i: Some(0),
        r#type: Some(2),
        ..Default::default()
    });
    let inits = vec![
        ints("zero", &[0]),
        ints("one", &[1]),
        ints("minus_one", &[-1]),
    ];
    let dims = [
        Dim::DimParam("batch".into()),
        Dim::DimValue(3),
        Dim::DimValue(4),
    ];
    let m = model(concat, inits, &dims, "y");
    let e = import_bytes(&m, None, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dynamic dim `batch`") && e.contains("--dim batch=SIZE"),
        "{e}"
    );
    let imp = import_bytes(&m, None, &OnnxOptions::with_dims(&["batch=2"]).unwrap()).unwrap();
    let g = &imp.graph;
    assert_eq!(g.ty(g.outputs[0]).to_string(), "f32[2,12]");
    // Nothing but the input and the reshape: Shape, Slice and Concat left no nodes.
    assert_eq!(g.len(), 2);
    assert!(matches!(g.nodes[1].op, Op::Reshape));
}

#[test]
fn external_data_must_stay_in_the_models_folder() {
    for location in ["../w.bin", "/etc/w.bin"] {
        let w = TensorProto {
            name: Some("w".into()),
            dims: vec![4],
            data_type: Some(DataType::Float as i32),
            data_location: Some(DataLocation::External as i32),
            external_data: vec![StringStringEntryProto {
                key: Some("location".into()),
                value: Some(location.into()),
            }],
            ..Default::default()
        };
        let m = model(
            vec![node("Add", &["x", "w"], &["y"])],
            vec![w],
            &[Dim::DimValue(4)],
            "y",
        );
        let dir = std::env::temp_dir();
        let e = import_bytes(&m, Some(&dir), &OnnxOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("initializer `w`") && e.contains("without `..`"),
            "{location}: {e}"
        );
    }
}

#[test]
fn garbage_is_not_a_model() {
    let e = import_bytes(b"\xff\xff\xff", None, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an ONNX model"), "{e}");
}
