//! `rlft`: the command line of rlft.

mod common;
mod demo;
mod device;
mod diagnose;
mod drift;
mod eval;
#[cfg(test)]
mod fuzz;
mod runs;
mod samples;
mod score;
mod serve;
mod sft;
mod simulate;
mod train;
mod webscale;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Reinforcement-learning finetuning of language models on Burn.
#[derive(Parser, Debug)]
#[command(name = "rlft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// GRPO-family RL on a Hugging Face checkpoint and a JSONL dataset, from a TOML config
    /// (any sampler and verifier, full or LoRA, resumable, exports safetensors).
    Train(train::TrainArgs),
    /// Supervised (or weighted) finetuning of a checkpoint on prompt / completion pairs.
    Sft(sft::SftArgs),
    /// pass@1 and pass@k of a checkpoint on a JSONL dataset.
    Eval(eval::EvalArgs),
    /// Serve a checkpoint with the OpenAI-compatible API.
    Serve(serve::ServeArgs),
    /// From nothing: generate an arithmetic task, warm-start a tiny model with SFT, run GRPO
    /// with DPS, and report held-out accuracy before and after.
    Demo(demo::DemoArgs),
    /// Compare prompt samplers on synthetic prompts that learn (no model, no GPU).
    Simulate(simulate::SimulateArgs),
    /// Per-token log-probs of texts or token ids under a Hugging Face checkpoint.
    Score(score::ScoreArgs),
    /// DRIFT: collect try-again episodes from a fixed reference policy, weighted SFT,
    /// multi-turn evaluation (`collect`, `train`, `eval`, `run`).
    Drift(drift::DriftArgs),
    /// Diagnostics of a checkpoint: `alignment` (cosine of ∇log P(y) and ∇log π(y|x)).
    Diagnose(diagnose::DiagnoseArgs),
    /// Webscale-RL: pretraining documents to verifiable QA pairs for RL (`run`, `merge`,
    /// `stats`).
    Webscale(webscale::WebscaleArgs),
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<runs::Interrupted>().is_some() => {
            // Ctrl-C after a checkpoint: the conventional 128 + SIGINT.
            eprintln!("{e}");
            std::process::ExitCode::from(130)
        }
        Err(e) => {
            // The whole chain on one report: "error: config run.toml: invalid config value …".
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => println!("{}", train::run(&args)?.display()),
        Command::Sft(args) => println!("{}", sft::run(&args)?.display()),
        Command::Eval(args) => println!("{}", eval::run(&args)?),
        Command::Serve(args) => serve::run(&args)?,
        Command::Demo(args) => {
            let summary_path: PathBuf = demo::run(&args)?;
            println!("{}", summary_path.display());
        }
        Command::Simulate(args) => print!("{}", simulate::run(&args)?),
        Command::Score(args) => score::run(&args)?,
        Command::Diagnose(args) => println!("{}", diagnose::run(&args)?),
        Command::Drift(args) => println!("{}", drift::run(&args)?.display()),
        Command::Webscale(args) => println!("{}", webscale::run(&args)?),
    }
    Ok(())
}
