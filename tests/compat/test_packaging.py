"""How the nnunetv2 namespace is installed: its metadata, the refusal next to a real nnU-Net, child processes."""
from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
COMPAT = REPO / "compat" / "nnunetv2"


def test_the_installed_namespace_answers_as_nnunetv2_2_8_1_tagged_as_ours():
    import nnunetv2

    version = metadata.version("nnunetv2")
    assert version == "2.8.1+nnunetfast" == nnunetv2.__version__
    # what TotalSegmentator and MONAI require of it
    for requirement in ("nnunetv2>=2.3", "nnunetv2>=2.2.1", "nnunetv2"):
        assert Requirement(requirement).specifier.contains(version)
    assert Path(nnunetv2.__file__).is_relative_to(COMPAT)
    assert metadata.version("nnunet-fast")


def _child_version(queue):
    import nnunetv2

    queue.put(nnunetv2.__file__)


def test_a_spawned_child_process_sees_the_same_namespace():
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child_version, args=(queue,))
    child.start()
    child.join(60)
    import nnunetv2

    assert queue.get(timeout=5) == nnunetv2.__file__


def _venv(path: Path, with_pip: bool = False) -> tuple[Path, Path]:
    subprocess.run([sys.executable, "-m", "venv", str(path)] + ([] if with_pip else ["--without-pip"]), check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return python, Path(purelib)


def _source_copy(tmp_path: Path) -> Path:
    """The namespace's source outside the repository: building it writes a build/ folder next to it."""
    return Path(shutil.copytree(COMPAT, tmp_path / "src", ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                                      "__pycache__")))


def _plant_real_nnunetv2(site: Path) -> Path:
    """What `pip install nnunetv2==2.8.1` leaves that matters here: its metadata and its package."""
    dist_info = site / "nnunetv2-2.8.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnunetv2\nVersion: 2.8.1\n\n")
    (site / "nnunetv2").mkdir()
    (site / "nnunetv2" / "__init__.py").write_text("REAL = True\n")
    (dist_info / "RECORD").write_text("nnunetv2/__init__.py,,\nnnunetv2-2.8.1.dist-info/METADATA,,\n")
    return dist_info


@pytest.mark.slow
def test_installing_next_to_a_real_nnunetv2_is_refused_and_the_real_one_stays(tmp_path):
    python, site = _venv(tmp_path / "venv", with_pip=True)
    real = _plant_real_nnunetv2(site)
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(_source_copy(tmp_path))],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "Refusing to install nnunet-fast's nnunetv2 namespace: the real nnU-Net is installed here " \
           "(nnunetv2 2.8.1 in" in result.stdout + result.stderr
    assert (real / "METADATA").is_file() and (site / "nnunetv2" / "__init__.py").read_text() == "REAL = True\n"
    # setup.sh asks the same question and leaves the real one in place
    check = subprocess.run([str(python), str(REPO / "scripts" / "check_environment.py"), "real-nnunetv2"],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "nnU-Net 2.8.1 (nnunetv2) is installed" in check.stdout


@pytest.mark.slow
def test_a_clean_environment_gets_the_namespace_with_its_metadata(tmp_path):
    python, site = _venv(tmp_path / "venv", with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(_source_copy(tmp_path))], check=True,
                   capture_output=True)
    version = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version('nnunetv2'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert version == "2.8.1+nnunetfast"
    assert (site / "nnunetv2" / "inference").is_dir()


def test_nnunet_v1_in_the_environment_stops_the_set_up(tmp_path):
    python, site = _venv(tmp_path / "venv")
    dist_info = site / "nnunet-1.7.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: nnunet\nVersion: 1.7.1\n\n")
    check = subprocess.run([str(python), str(REPO / "scripts" / "check_environment.py"), "nnunet-v1"],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "nnU-Net v1 (1.7.1) is installed" in check.stderr


def test_an_environment_mixing_our_package_with_real_metadata_is_refused_at_import(tmp_path):
    """Files of ours under the metadata of the real one (a broken reinstall): one clear ImportError."""
    python, site = _venv(tmp_path / "venv")
    _plant_real_nnunetv2(site)
    (site / "nnunetv2" / "__init__.py").write_text((COMPAT / "nnunetv2" / "__init__.py").read_text())
    result = subprocess.run([str(python), "-c", "import nnunetv2"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "the installed nnunetv2 distribution is nnU-Net 2.8.1: the two are mixed" in result.stderr
