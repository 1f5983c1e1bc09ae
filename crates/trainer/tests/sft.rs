//! The SFT loop and policy scoring on a tiny Qwen2 model.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_models::{CausalLm, qwen2};
use rlft_trainer::{OptimConfig, SftConfig, SftExample, completion_logprobs, sft_batch, sft_train};

/// Tests in this file share the backend's RNG (seeded per test), so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const VOCAB: usize = 40;

fn examples() -> Vec<SftExample> {
    let ex = |p: &[u32], c: &[u32]| SftExample {
        prompt_ids: p.to_vec(),
        completion_ids: c.to_vec(),
        ..SftExample::default()
    };
    vec![
        ex(&[1, 2, 3], &[7, 8, 9, 2]),
        ex(&[4], &[10, 11, 2]),
        ex(&[5, 6], &[12, 2]),
        ex(&[3, 3, 3, 3], &[13, 14, 15, 16, 2]),
    ]
}

#[test]
fn batched_scoring_equals_one_sequence_at_a_time() {
    let _serial = serial();
    let device = Device::flex();
    device.seed(0);
    let model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let ex = examples();
    let rows: Vec<&SftExample> = ex.iter().collect();
    let batch = sft_batch(&rows, 0).unwrap();
    let got: Vec<f32> = completion_logprobs(&model, &batch, 0.7, &device)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let t = batch.completion_len;
    for (r, e) in ex.iter().enumerate() {
        let seq: Vec<i64> = e
            .prompt_ids
            .iter()
            .chain(&e.completion_ids)
            .map(|&x| x as i64)
            .collect();
        let n = seq.len();
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(seq[..n - 1].to_vec(), [1, n - 1]),
            &device,
        );
        let tg =
            Tensor::<2, Int>::from_data(TensorData::new(seq[1..].to_vec(), [1, n - 1]), &device);
        let mask = Tensor::<2, Int>::ones([1, n - 1], &device);
        let want: Vec<f32> = model
            .token_log_probs(ids, mask, tg, 0.7)
            .into_data()
            .try_to_vec()
            .unwrap();
        let p = e.prompt_ids.len();
        for (j, w) in want[p - 1..].iter().enumerate() {
            let g = got[r * t + j];
            assert!((g - w).abs() < 1e-5, "row {r} token {j}: {g} vs {w}");
        }
    }
}

#[test]
fn sft_fits_a_small_set() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let cfg = SftConfig {
        epochs: 40,
        batch_size: 2,
        grad_accum_steps: 2,
        optim: OptimConfig {
            lr: 3e-3,
            weight_decay: 0.0,
            schedule: rlft_trainer::LrSchedule::Constant,
            ..OptimConfig::default()
        },
        ..SftConfig::default()
    };
    let mut nll = Vec::new();
    let _model = sft_train(model, &examples(), &cfg, &device, |r| {
        nll.push(r.get("nll").unwrap())
    })
    .unwrap();
    assert_eq!(nll.len(), cfg.total_steps(4));
    let (first, last) = (nll[0], *nll.last().unwrap());
    assert!(
        first > 2.5,
        "an untrained model should be near ln(40) ≈ 3.7, got {first}"
    );
    assert!(
        last < 0.3,
        "SFT should fit four examples: nll {first} → {last}"
    );
}

#[test]
fn bad_examples_and_configs_are_errors() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let empty_prompt = vec![SftExample {
        prompt_ids: vec![],
        completion_ids: vec![1],
        ..SftExample::default()
    }];
    assert!(matches!(
        sft_train(
            model.clone(),
            &empty_prompt,
            &SftConfig::default(),
            &device,
            |_| {}
        ),
        Err(rlft_trainer::TrainerError::InvalidBatch(_))
    ));
    let cfg = SftConfig {
        batch_size: 0,
        ..SftConfig::default()
    };
    assert!(matches!(
        sft_train(model, &examples(), &cfg, &device, |_| {}),
        Err(rlft_trainer::TrainerError::Config {
            field: "sft.batch_size",
            ..
        })
    ));
}
