//! Snapshots a person reviews whole: the text dump of a two-layer GPT, and `check` summaries.

use crate::common::{shardc_ok, zoo, TINY_GPT};

#[test]
fn text_dump_of_a_two_layer_gpt() {
    let path = zoo("snap_gpt.json", TINY_GPT);
    insta::assert_snapshot!("gpt_2_layers_dump", shardc_ok(&["show", &path]));
}

#[test]
fn check_summaries_of_small_models() {
    let mut megatron = TINY_GPT.to_vec();
    megatron.extend_from_slice(&["--shardings", "megatron", "--mesh", "dp=2,tp=2"]);
    for (name, args) in [
        ("mlp", &["mlp"][..]),
        ("gpt", TINY_GPT),
        ("gpt_megatron", &megatron[..]),
        ("resnet", &["resnet"][..]),
        ("moe", &["moe"][..]),
    ] {
        let path = zoo(&format!("snap_{name}.json"), args);
        insta::assert_snapshot!(format!("check_{name}_text"), shardc_ok(&["check", &path]));
        insta::assert_snapshot!(
            format!("check_{name}_json"),
            shardc_ok(&["check", &path, "--format", "json"])
        );
    }
}
