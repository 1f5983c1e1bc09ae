//! Bad input to the objectives gives a typed error, never a panic (issue: rlft-core, point 6).

use burn::tensor::{Device, Tensor};
use rlft_core::{
    CoreError, LossAggregation, Objective, ObjectiveInput, PolicyLossConfig, PolicyTensors,
    WeightedNll, token_logprobs,
};

fn dev() -> Device {
    Device::flex().autodiff()
}

#[test]
fn mismatched_shapes_are_named() {
    let d = dev();
    let err = PolicyTensors::new(Tensor::ones([2, 3], &d), Tensor::zeros([3], &d), None, None)
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::ShapeMismatch {
            what: "advantages",
            expected: vec![2],
            found: vec![3]
        }
    );
    let err = PolicyTensors::new(
        Tensor::ones([2, 3], &d),
        Tensor::zeros([2], &d),
        Some(Tensor::zeros([2, 4], &d)),
        None,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        CoreError::ShapeMismatch {
            what: "old_logps",
            ..
        }
    ));

    let batch =
        PolicyTensors::new(Tensor::ones([2, 3], &d), Tensor::zeros([2], &d), None, None).unwrap();
    let loss = PolicyLossConfig::default().init().unwrap();
    let err = loss
        .compute(ObjectiveInput::new(Tensor::zeros([2, 4], &d), &batch))
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::ShapeMismatch { what: "logps", .. }
    ));
    let err = WeightedNll::default()
        .compute(ObjectiveInput::new(Tensor::zeros([3, 3], &d), &batch))
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::ShapeMismatch { what: "logps", .. }
    ));
    let err = loss
        .compute(
            ObjectiveInput::new(Tensor::zeros([2, 3], &d), &batch)
                .with_entropy(Tensor::zeros([1, 3], &d)),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::ShapeMismatch {
            what: "entropy",
            ..
        }
    ));
}

#[test]
fn empty_batch_is_an_error() {
    let d = dev();
    let err = PolicyTensors::new(Tensor::ones([0, 3], &d), Tensor::zeros([0], &d), None, None)
        .unwrap_err();
    assert_eq!(err, CoreError::EmptyBatch { what: "mask" });
}

#[test]
fn missing_inputs_are_named() {
    let d = dev();
    let batch =
        PolicyTensors::new(Tensor::ones([2, 3], &d), Tensor::zeros([2], &d), None, None).unwrap();
    let with_kl = PolicyLossConfig {
        beta: 0.04,
        ..PolicyLossConfig::default()
    }
    .init()
    .unwrap();
    let err = with_kl
        .compute(ObjectiveInput::new(Tensor::zeros([2, 3], &d), &batch))
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::MissingInput {
            what: "ref_logps",
            ..
        }
    ));
    let with_entropy = PolicyLossConfig {
        entropy_coef: 0.01,
        ..PolicyLossConfig::default()
    }
    .init()
    .unwrap();
    let err = with_entropy
        .compute(ObjectiveInput::new(Tensor::zeros([2, 3], &d), &batch))
        .unwrap_err();
    assert!(matches!(
        err,
        CoreError::MissingInput {
            what: "entropy",
            ..
        }
    ));
}

#[test]
fn bad_config_values_name_the_field() {
    let cases: Vec<(PolicyLossConfig, &str)> = vec![
        (
            PolicyLossConfig {
                epsilon_low: 1.0,
                ..Default::default()
            },
            "epsilon_low",
        ),
        (
            PolicyLossConfig {
                epsilon_high: f32::NAN,
                ..Default::default()
            },
            "epsilon_high",
        ),
        (
            PolicyLossConfig {
                delta: Some(0.5),
                ..Default::default()
            },
            "delta",
        ),
        (
            PolicyLossConfig {
                dual_clip: Some(1.0),
                ..Default::default()
            },
            "dual_clip",
        ),
        (
            PolicyLossConfig {
                log_ratio_clamp: Some(0.0),
                ..Default::default()
            },
            "log_ratio_clamp",
        ),
        (
            PolicyLossConfig {
                beta: -0.1,
                ..Default::default()
            },
            "beta",
        ),
        (
            PolicyLossConfig {
                aggregation: LossAggregation::DrGrpo {
                    max_completion_length: 0,
                },
                ..Default::default()
            },
            "aggregation.max_completion_length",
        ),
    ];
    for (cfg, field) in cases {
        match cfg.init() {
            Err(CoreError::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a config error, got {other:?}"),
        }
    }
    // Unknown fields in a config file are rejected, not ignored.
    let err = serde_json::from_str::<PolicyLossConfig>(r#"{"epsilon_hgih": 0.28}"#).unwrap_err();
    assert!(err.to_string().contains("epsilon_hgih"), "{err}");
}

#[test]
fn bad_logprob_inputs_are_errors() {
    let d = dev();
    let logits = Tensor::<3>::zeros([2, 3, 5], &d);
    let targets = Tensor::<2, burn::tensor::Int>::zeros([2, 4], &d);
    assert!(matches!(
        token_logprobs(logits.clone(), targets, 1.0),
        Err(CoreError::ShapeMismatch {
            what: "targets",
            ..
        })
    ));
    let targets = Tensor::<2, burn::tensor::Int>::zeros([2, 3], &d);
    assert!(matches!(
        token_logprobs(logits, targets, 0.0),
        Err(CoreError::Config {
            field: "temperature",
            ..
        })
    ));
}
