//! `rlft simulate`: compare prompt samplers on synthetic prompts that learn (no model).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rlft_samplers::simulate::{self, DpsToyWorld, SflLogitWorld, SimConfig, World};

/// Which synthetic world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorldKind {
    /// The DPS spec's toy world (dps.md §8).
    Dps,
    /// The SFL spec's logit world (sfl.md §5.2).
    Sfl,
}

/// Options of `rlft simulate`.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// A full `SimConfig` as JSON; the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Synthetic world.
    #[arg(long, value_enum)]
    pub world: Option<WorldKind>,
    /// Steps per run.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seeds 0..N.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Prompts trained per step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Write simulation.md, simulation.svg and simulation.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the simulation, prints the table and returns it.
pub fn run(args: &SimulateArgs) -> anyhow::Result<String> {
    let mut config = match &args.config {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => SimConfig::default(),
    };
    match args.world {
        Some(WorldKind::Dps) => config.world = World::DpsToy(DpsToyWorld::default()),
        Some(WorldKind::Sfl) => {
            config.solved_fractions = vec![0.5, 0.7, 0.9];
            config.world = World::SflLogit(SflLogitWorld::default());
        }
        None => {}
    }
    if let Some(v) = args.steps {
        config.steps = v;
    }
    if let Some(v) = args.seeds {
        config.seeds = v;
    }
    if let Some(v) = args.batch {
        config.batch_size = v;
    }
    let report = simulate::run(&config)?;
    let table = report.markdown_table();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        simulate::write_atomic(&dir.join("simulation.md"), &table)?;
        simulate::write_atomic(&dir.join("simulation.svg"), &report.svg())?;
        simulate::write_atomic(
            &dir.join("simulation.json"),
            &serde_json::to_string_pretty(&report)?,
        )?;
    }
    Ok(table)
}
