#!/usr/bin/env python3
"""Golden episodes from DRIFT's released collection code (github.com/2020-qqtcg/DRIFT, HEAD d8e1630).

Runs the released `process_turn` (src/generate_weighted_data_vllm_metamathqa.py) and the
released prompt builders (src/prompting.py) on scripted model outputs, in both prompt modes,
and writes what they store: messages, per-turn rewards, format penalty, answer norms, t_star.
`crates/tasks/tests/drift_released.rs` replays the same outputs through rlft's `TryAgain` and
compares. vLLM, datasets, transformers and tqdm are stubbed: only pure-Python functions run.

    git clone https://github.com/2020-qqtcg/DRIFT /tmp/DRIFT   # d8e1630
    python3 scripts/drift_released/gen_episodes.py --drift-src /tmp/DRIFT/src \
        > crates/tasks/tests/fixtures/drift_released_episodes.json
"""
import argparse
import json
import sys
import types


def stub(name, **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[name] = mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drift-src", required=True)
    a = ap.parse_args()
    stub("vllm", LLM=object, SamplingParams=object)
    stub("datasets", load_dataset=None)
    stub("transformers", AutoTokenizer=object)
    stub("tqdm")
    stub("tqdm.auto", tqdm=None)
    sys.path.insert(0, a.drift_src)
    import prompting as P  # noqa: E402
    import generate_weighted_data_vllm_metamathqa as G  # noqa: E402

    question = "What is 6 * 7?"
    gold = "42"
    scenarios = {
        "wrong_repeat_then_right": ["a</think><answer>5</answer>", "b</think> <answer>5</answer>",
                                    "c</think><answer>42</answer>"],
        "unparseable_first_then_five": ["no tags at all", "x</think><answer>3</answer>", "</think>",
                                        "y</think><answer></answer>", "z</think><answer> 4 </answer>"],
        "right_at_once": ["sum</think><answer>42</answer>"],
        "double_bar_and_specials": ["t<|im_end|></think><answer>41 || 42</answer>",
                                    "u</think><answer>4 2</answer>"],
        "all_wrong": ["p</think><answer>1</answer>", "q</think><answer>2</answer>",
                      "r</think><answer>1</answer>", "s</think><answer>3</answer>",
                      "t</think><answer>x</answer>"],
    }
    out = {"source": "github.com/2020-qqtcg/DRIFT d8e1630, src/prompting.py + process_turn",
           "question": question, "gold": gold, "max_turns": 5, "max_actions_per_traj": 5,
           "max_actions_per_turn": 1, "format_penalty": -0.1, "instruction_max_tokens": 400,
           "system_message": P.SYSTEM_MESSAGE, "env_instruction": P.DEFAULT_ENV_INSTRUCTION,
           "incorrect_obs": P.DEFAULT_INCORRECT_OBS, "cases": []}
    for mode in ["simple", "full"]:
        args = argparse.Namespace(max_turns=5, max_actions_per_traj=5, max_actions_per_turn=1,
                                  format_penalty=-0.1, instruction_max_tokens=400,
                                  action_sep="||", prompt_mode=mode)
        for name, outputs in scenarios.items():
            messages = P.build_initial_messages(question, args.max_actions_per_traj,
                                                args.instruction_max_tokens, True, mode,
                                                P.DEFAULT_ENV_INSTRUCTION)
            episode = P.MultiTurnAnswerEpisode(question, gold, args.max_actions_per_traj)
            traj = {"prompt_id": "q_0", "gold": gold, "messages": P.clone_messages(messages),
                    "verifier": {}, "turn_rewards": {}, "reward_details": {}, "t_star": None,
                    "done": False, "traj_idx": 0, "episode": episode,
                    "actions_left": args.max_actions_per_traj, "answer_norms": [],
                    "format_penalty": 0.0}
            used = []
            for turn, raw in enumerate(outputs, start=1):
                if traj["done"]:
                    break
                G.process_turn(traj, raw, turn, args, True)
                used.append(raw)
            assert len(used) == len(outputs), (mode, name, "scenario runs past the episode end")
            out["cases"].append({
                "mode": mode, "name": name, "outputs": outputs,
                "messages": traj["messages"], "turn_rewards": traj["turn_rewards"],
                "format_penalty": traj["format_penalty"], "answer_norms": traj["answer_norms"],
                "t_star": traj["t_star"], "done": traj["done"],
            })
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
