//! Compare prompt samplers on synthetic prompts that learn (no GPU).
//!
//! `cargo run --release -p rlft-samplers --example simulate -- --help`

use std::path::PathBuf;

use rlft_samplers::simulate::{self, DpsToyWorld, SflLogitWorld, SimConfig, World};

const HELP: &str = "\
simulate: compare prompt samplers on a synthetic learning-dynamics world

USAGE:
    simulate [OPTIONS]

OPTIONS:
    --world <dps|sfl>     dps: DPS spec §8 toy world (default); sfl: sfl.md §5.2 logit world
                          (also reports 50/70/90% solved instead of 40/50/60%)
    --steps <N>           steps per run (default 150)
    --seeds <N>           seeds 0..N (default 3)
    --batch <B>           prompts trained per step (default 128)
    --config <FILE>       read a full SimConfig from JSON (other flags then override it)
    --out <DIR>           write DIR/simulation.md, DIR/simulation.svg and DIR/simulation.json
                          (default: print the table only)
    -h, --help            print this help
";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        let mut src = e.source();
        while let Some(s) = src {
            eprintln!("  caused by: {s}");
            src = s.source();
        }
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut config = SimConfig::default();
    let mut out: Option<PathBuf> = None;
    let mut overrides: Vec<(String, String)> = Vec::new();
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            print!("{HELP}");
            return Ok(());
        }
        let value = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        overrides.push((a, value));
    }
    if let Some((_, path)) = overrides.iter().find(|(k, _)| k == "--config") {
        config = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    }
    for (k, v) in &overrides {
        match k.as_str() {
            "--config" => {}
            "--world" => {
                config.world = match v.as_str() {
                    "dps" => World::DpsToy(DpsToyWorld::default()),
                    "sfl" => {
                        // sfl.md §5.2 reports steps to 50/70/90% solved.
                        config.solved_fractions = vec![0.5, 0.7, 0.9];
                        World::SflLogit(SflLogitWorld::default())
                    }
                    other => return Err(format!("--world must be dps or sfl, got {other}").into()),
                }
            }
            "--steps" => config.steps = v.parse()?,
            "--seeds" => config.seeds = v.parse()?,
            "--batch" => config.batch_size = v.parse()?,
            "--out" => out = Some(PathBuf::from(v)),
            other => return Err(format!("unknown option {other} (see --help)").into()),
        }
    }
    let report = simulate::run(&config)?;
    let table = report.markdown_table();
    print!("{table}");
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir)?;
        simulate::write_atomic(&dir.join("simulation.md"), &table)?;
        simulate::write_atomic(&dir.join("simulation.svg"), &report.svg())?;
        simulate::write_atomic(
            &dir.join("simulation.json"),
            &serde_json::to_string_pretty(&report)?,
        )?;
        eprintln!("wrote {}/simulation.{{md,svg,json}}", dir.display());
    }
    Ok(())
}
