//! `shardc zoo NAME [--options] -o FILE`: generate a model from `shardc_ir::zoo`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use shardc::ir::zoo::{self, GptConfig, GptShardings, MlpConfig, MoeConfig, ResNetConfig};
use shardc::ir::{DType, Graph, Mesh, UnaryFn};

use super::grad::TrainArgs;
use super::{progress_bar, spinner, write_output, CliError};

#[derive(Args, Debug)]
pub struct ZooArgs {
    #[command(subcommand)]
    pub model: Model,
}

/// The models of the zoo.
#[derive(Subcommand, Debug)]
pub enum Model {
    /// A multi-layer perceptron with a mean-squared-error loss.
    Mlp(MlpArgs),
    /// A GPT-style decoder (GPT-3 175B: --layers 96 --hidden 12288 --heads 96 --seq 2048
    /// --vocab 51200).
    Gpt(GptArgs),
    /// A ResNet-style convolutional classifier (NCHW).
    Resnet(ResNetArgs),
    /// A mixture-of-experts layer with top-1 routing.
    Moe(MoeArgs),
}

/// Where the graph goes.
#[derive(Args, Debug)]
pub struct OutputArg {
    /// Write the graph (shardc JSON) to FILE; standard output if omitted.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    s.parse().map_err(|e: shardc::ir::IrError| e.to_string())
}

fn parse_mesh(s: &str) -> Result<Mesh, String> {
    s.parse().map_err(|e: shardc::ir::IrError| e.to_string())
}

#[derive(Args, Debug)]
pub struct MlpArgs {
    /// Rows per step.
    #[arg(long, default_value_t = 8)]
    pub batch: u64,
    /// Feature sizes: the input's, then each layer's output.
    #[arg(long, value_delimiter = ',', default_value = "16,32,8")]
    pub sizes: Vec<u64>,
    /// Activation after every layer but the last.
    #[arg(long, value_enum, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// Leave out the target input and the loss.
    #[arg(long)]
    pub no_loss: bool,
    /// Element type (f32, f64, bf16, f16).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    #[command(flatten)]
    pub out: OutputArg,
}

/// Activations the MLP offers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Activation {
    Relu,
    Gelu,
    Tanh,
    Sigmoid,
}

impl Activation {
    fn func(self) -> UnaryFn {
        match self {
            Activation::Relu => UnaryFn::Relu,
            Activation::Gelu => UnaryFn::Gelu,
            Activation::Tanh => UnaryFn::Tanh,
            Activation::Sigmoid => UnaryFn::Sigmoid,
        }
    }
}

#[derive(Args, Debug)]
pub struct GptArgs {
    /// Transformer layers (l).
    #[arg(long, default_value_t = 2)]
    pub layers: u64,
    /// Hidden size (h).
    #[arg(long, default_value_t = 64)]
    pub hidden: u64,
    /// Attention heads (a); must divide the hidden size.
    #[arg(long, default_value_t = 4)]
    pub heads: u64,
    /// Sequence length (s).
    #[arg(long, default_value_t = 32)]
    pub seq: u64,
    /// Vocabulary size (V).
    #[arg(long, default_value_t = 256)]
    pub vocab: u64,
    /// Sequences per step (B).
    #[arg(long, default_value_t = 2)]
    pub batch: u64,
    /// Element type of parameters and activations (f32, f64, bf16, f16).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Dropout rate (GPT-2 and Megatron-LM train with 0.1): on the embedding, the attention
    /// weights and each block's output, masks as bool inputs `*.keep`. 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Add sharding annotations in this style (needs --mesh).
    #[arg(long, value_enum)]
    pub shardings: Option<ShardingStyle>,
    /// The mesh the annotations refer to, e.g. dp=2,tp=4.
    #[arg(long, value_parser = parse_mesh, requires = "shardings")]
    pub mesh: Option<Mesh>,
    #[command(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    pub out: OutputArg,
}

/// Annotation styles of the GPT builder.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShardingStyle {
    /// Megatron-LM tensor parallelism on axis `tp` (vocabulary-parallel embedding), batch on
    /// axis `dp`.
    Megatron,
    /// `megatron` plus sequence parallelism: the residual stream split on the sequence over `tp`.
    MegatronSp,
}

#[derive(Args, Debug)]
pub struct ResNetArgs {
    /// Images per step.
    #[arg(long, default_value_t = 2)]
    pub batch: u64,
    /// Channels of the input images.
    #[arg(long, default_value_t = 3)]
    pub in_channels: u64,
    /// Height and width of the input images.
    #[arg(long, default_value_t = 16)]
    pub image: u64,
    /// Channels of the first stage (doubled per later stage).
    #[arg(long, default_value_t = 8)]
    pub width: u64,
    /// Residual blocks per stage, e.g. 2,2,2.
    #[arg(long, value_delimiter = ',', default_value = "1,1")]
    pub stages: Vec<u64>,
    /// Classes of the classifier.
    #[arg(long, default_value_t = 10)]
    pub classes: u64,
    /// Element type (f32, f64, bf16, f16).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    #[command(flatten)]
    pub out: OutputArg,
}

#[derive(Args, Debug)]
pub struct MoeArgs {
    /// Tokens per step (batch × sequence).
    #[arg(long, default_value_t = 16)]
    pub tokens: u64,
    /// Model width.
    #[arg(long, default_value_t = 8)]
    pub hidden: u64,
    /// Each expert's inner width.
    #[arg(long, default_value_t = 16)]
    pub ffn: u64,
    /// Number of experts.
    #[arg(long, default_value_t = 4)]
    pub experts: u64,
    /// Element type (f32, f64, bf16, f16).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    #[command(flatten)]
    pub out: OutputArg,
}

pub fn run(a: ZooArgs) -> Result<(), CliError> {
    let (g, out) = match a.model {
        Model::Mlp(m) => {
            let cfg = MlpConfig {
                batch: m.batch,
                sizes: m.sizes,
                activation: m.activation.func(),
                loss: !m.no_loss,
                dtype: m.dtype,
            };
            (zoo::mlp(&cfg)?, m.out)
        }
        Model::Gpt(m) => {
            let shardings = match (m.shardings, m.mesh) {
                (None, _) => GptShardings::None,
                (Some(ShardingStyle::Megatron), Some(mesh)) => GptShardings::Megatron(mesh),
                (Some(ShardingStyle::MegatronSp), Some(mesh)) => {
                    GptShardings::MegatronSequenceParallel(mesh)
                }
                (Some(_), None) => {
                    return Err(CliError::Input(
                        "--shardings needs --mesh, e.g. --mesh dp=2,tp=4".into(),
                    ))
                }
            };
            let cfg = GptConfig {
                layers: m.layers,
                hidden: m.hidden,
                heads: m.heads,
                seq: m.seq,
                vocab: m.vocab,
                batch: m.batch,
                dtype: m.dtype,
                shardings,
            };
            let bar = progress_bar(cfg.layers, "building layers");
            let g = zoo::gpt_with_dropout(&cfg, m.dropout, &mut |done, _| bar.set_position(done));
            bar.finish_and_clear();
            let mut g = m.train.apply(g?)?;
            // Megatron's backward and recomputation layouts (a no-op without annotations or
            // without --train).
            zoo::annotate_megatron_training(&mut g);
            (g, m.out)
        }
        Model::Resnet(m) => {
            let cfg = ResNetConfig {
                batch: m.batch,
                in_channels: m.in_channels,
                image: m.image,
                width: m.width,
                stages: m.stages,
                classes: m.classes,
                dtype: m.dtype,
            };
            (zoo::resnet(&cfg)?, m.out)
        }
        Model::Moe(m) => {
            let cfg = MoeConfig {
                tokens: m.tokens,
                hidden: m.hidden,
                ffn: m.ffn,
                experts: m.experts,
                dtype: m.dtype,
            };
            (zoo::moe(&cfg)?, m.out)
        }
    };
    write_graph(&g, out.output.as_deref())
}

fn write_graph(g: &Graph, path: Option<&Path>) -> Result<(), CliError> {
    let spin = spinner("writing the graph");
    let mut text = shardc::ir::to_json(g);
    text.push('\n');
    spin.finish_and_clear();
    write_output(path, &text)
}
