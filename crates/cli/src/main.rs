//! `rlft`: the command line of rlft.

mod demo;
mod device;
mod score;
mod simulate;

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
    /// From nothing: generate an arithmetic task, warm-start a tiny model with SFT, run GRPO
    /// with DPS, and report held-out accuracy before and after.
    Demo(demo::DemoArgs),
    /// Compare prompt samplers on synthetic prompts that learn (no model, no GPU).
    Simulate(simulate::SimulateArgs),
    /// Per-token log-probs of texts or token ids under a Hugging Face checkpoint.
    Score(score::ScoreArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => {
            let summary_path: PathBuf = demo::run(&args)?;
            println!("{}", summary_path.display());
        }
        Command::Simulate(args) => print!("{}", simulate::run(&args)?),
        Command::Score(args) => score::run(&args)?,
    }
    Ok(())
}
