# Copyright 2026 The ModelZoo TF2 medical imaging authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Tests of common/train_script.sh, the flag loop of every model's test/*.sh,
through a stand-in model directory whose script prints what it parsed."""

import os
import subprocess

import pytest

COMMON = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_SCRIPT = """\
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
Network=Fake_for_TensorFlow
batch_size=8
train_epochs=3
train_steps=0
learning_rate=0.01
checkpoint_every=50
depth=2
model_flag() {
  case "$1" in
    --depth=*) depth="${1#*=}" ;;
    *) return 1 ;;
  esac
}
model_help() { echo "    --depth=N                layers (default ${depth})"; }
mz_parse_flags "$@"
mz_run_folder
echo "batch=${batch_size} epochs=${train_epochs} steps=${train_steps} lr=${learning_rate} depth=${depth}"
echo "folder=${run_folder} resume=${run_resume} every=${checkpoint_every} keep=${keep_checkpoints}"
if [ -n "${LAUNCH:-}" ]; then
  mz_launch --network=Fake --batch_size="${batch_size}" --case_kind=perf -- \
    "${mz_python}" -c "print('TRAIN step=1 loss=0.5 images_per_sec=2.0 elapsed_sec=1.0')"
fi
"""


@pytest.fixture
def fake_model(tmp_path):
    repo = tmp_path / "repo"
    (repo / "Fake_for_TensorFlow" / "test").mkdir(parents=True)
    os.symlink(COMMON, repo / "common")
    (repo / "Fake_for_TensorFlow" / "test" / "env.sh").write_text("")
    script = repo / "Fake_for_TensorFlow" / "test" / "train_full_1p.sh"
    script.write_text(FAKE_SCRIPT)
    (tmp_path / "data").mkdir()

    def run(*flags, launch=False):
        env = dict(os.environ, **({"LAUNCH": "1"} if launch else {}))
        env.pop("RANK_SIZE", None)
        return subprocess.run(["bash", str(script), *flags], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, env=env)
    return run


def test_help_lists_the_common_names_with_the_models_defaults(fake_model):
    result = fake_model("--help")
    assert result.returncode == 0
    for expected in ("--batch_size=N           per device (default 8)", "--train_epochs=N         epochs (default 3)",
                     "--max_step and --max_steps are aliases (default 0)", "--ckpt_path=DIR", "--resume=True|False",
                     "--checkpoint_every=N     steps between checkpoints (default 50)",
                     "--keep_checkpoints=N     how many of the newest checkpoints stay (default 3)",
                     "--precision_mode=MODE", "Fake_for_TensorFlow flags:", "--depth=N                layers (default 2)"):
        assert expected in result.stdout


def test_common_names_aliases_and_model_flags(fake_model):
    result = fake_model("--data_path=data", "--batch_size=2", "--max_step=5", "--learning_rate=0.1", "--depth=4")
    assert result.returncode == 0, result.stderr
    assert "batch=2 epochs=3 steps=5 lr=0.1 depth=4" in result.stdout
    assert "folder={output_dir}/ckpt resume=False every=50 keep=3" in result.stdout  # the fresh per-rank folder
    assert "every=7 keep=1" in fake_model("--data_path=data", "--checkpoint_every=7", "--keep_checkpoints=1").stdout
    assert "steps=7 " in fake_model("--data_path=data", "--max_steps=6", "--train_steps=7").stdout


def test_ckpt_path_is_an_absolute_folder_that_resumes_unless_told_not_to(fake_model, tmp_path):
    result = fake_model("--data_path=data", "--ckpt_path=runs/a")
    assert result.returncode == 0, result.stderr
    assert f"folder={tmp_path}/runs/a resume=True" in result.stdout and (tmp_path / "runs" / "a").is_dir()
    assert "resume=False" in fake_model("--data_path=data", "--ckpt_path=runs/a", "--resume=False").stdout


def test_a_ckpt_path_inside_output_survives_the_next_run_with_every_runs_log(fake_model, tmp_path):
    output = tmp_path / "repo" / "Fake_for_TensorFlow" / "test" / "output"
    for _ in range(2):
        result = fake_model("--data_path=data", "--ckpt_path=repo/Fake_for_TensorFlow/test/output/0/ckpt",
                            launch=True)
        assert result.returncode == 0, result.stderr
        (output / "0" / "ckpt" / "ckpt-1.index").write_text("kept")
    assert (output / "0" / "ckpt" / "ckpt-1.index").read_text() == "kept"
    assert sorted(os.listdir(output / "0" / "ckpt" / "logs")) == ["segment-001", "segment-002"]
    assert "RunSegments = 2" in (output / "0" / "Fake_bs8_1p_perf.log").read_text()


@pytest.mark.parametrize("flags, message", [
    (("--data_path=data", "--resume=maybe"), "[Error] --resume=maybe: expected True or False"),
    (("--data_path=data", "--ckpt_path=data/file"), "[Error] --ckpt_path=data/file is a file, not a folder"),
    (("--data_path=data", "--checkpoint_every=0"), "[Error] --checkpoint_every=0: expected an integer >= 1"),
    (("--data_path=data", "--keep_checkpoints=x"), "[Error] --keep_checkpoints=x: expected an integer >= 1"),
    (("--data_path=data", "--depht=3"), "[Error] unknown flag '--depht=3'; see --help"),
    (("--batch_size=2",), '[Error] para "data_path" must be config'),
])
def test_bad_flags_end_with_one_line(fake_model, tmp_path, flags, message):
    (tmp_path / "data" / "file").write_text("")
    result = fake_model(*flags)
    assert result.returncode == 1 and result.stderr.strip() == message
