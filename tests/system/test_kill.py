"""Nothing left behind: SIGKILL at known phases (a fixed sample of the kill matrix), concurrency, same-name refusal."""
import subprocess
import threading

import pytest

import killmatrix
from conftest import GUEST, STATE_ROOT, vmlaunch

SAMPLE = [
    ("state", "vmlaunch"),
    ("hugepages", "all"),
    ("disk", "group"),
    ("zram-added", "vmlaunch"),  # the guardian finds the unmarked device through the pending hot_add's floor
    ("zram-added", "all"),       # so does --cleanup
    ("tpm", "vmlaunch"),  # swtpm running, qemu not yet: the guardian kills and reaps it
    ("tpm", "all"),       # swtpm dies by PDEATHSIG; --cleanup removes its state
    ("qemu", "qemu"),
    ("running", "vmlaunch"),
    ("running", "guardian"),
    ("running", "all"),
    ("teardown", "vmlaunch"),
]
# the [qemu] user column: qemu under another uid loses the death signal at setuid unless it is set again
SAMPLE_USERS = [
    ("running", "parents", None),
    ("running", "parents", "nobody"),
    ("running", "parents", "root"),
    ("disk", "vmlaunch", "nobody"),
    # inside an acquisition: qemu-img convert filling a disk dies with vmlaunch (PR_SET_PDEATHSIG in command.c)
    ("convert", "vmlaunch", None),
    ("convert", "all", None),
]


# a [share] (issue 20) and a tap on a bridge (issue 21): frozen with virtiofsd or the tap made and no qemu yet, or
# with qemu running; afterwards no virtiofsd, bind mount, state dir or tap remains, and the same name launches again
SAMPLE_FEATURES = [
    ("share", "vmlaunch", ()),  # the guardian undoes: virtiofsd, the read-only bind, the socket
    ("share", "virtiofsd", ()),  # resumed without its daemon: qemu cannot connect, the set-up unwinds
    ("share", "all", ()),  # nobody left but the daemon (PR_SET_PDEATHSIG); --cleanup takes the bind
    ("running", "qemu", ("share",)),
    ("running", "virtiofsd", ("share",)),
    ("running", "parents", ("share",)),
    ("network", "vmlaunch", ()),
    ("network", "all", ()),
    ("running", "qemu", ("tap",)),
    ("running", "parents", ("tap",)),
]


# warm start (issue 23): a save killed with its state written and no manifest leaves no directory behind (the
# journal holds it) and no snapshot; a restore killed before the load leaves the snapshot as it was; both names
# launch again (after a killed save: a boot, since no snapshot exists)
SAMPLE_SNAPSHOT = [
    ("snapshot-save", "vmlaunch"),
    ("snapshot-save", "all"),
    ("snapshot-save", "qemu"),  # the state was already complete: the save may finish, but only whole
    ("snapshot-restore", "vmlaunch"),
    ("snapshot-restore", "all"),
    ("snapshot-frozen", "vmlaunch"),  # a zram disk's frozen image in the temporary directory: removed with it
    ("snapshot-frozen", "all"),
]


@pytest.mark.parametrize("phase,victim", SAMPLE_SNAPSHOT)
def test_kill_leaves_no_half_snapshot(tmp_path, phase, victim):
    left, what = killmatrix.run_case(tmp_path, f"kill-{phase}-{victim}", phase, victim, relaunch=True)
    assert not left, f"after {what}: {left}"
    if phase == "snapshot-restore":
        assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == ["manifest", "ram", "state"]
    if phase == "snapshot-frozen":
        assert not (tmp_path / "snap").exists()  # a killed save left no snapshot: the relaunch booted


@pytest.mark.parametrize("phase,victim", SAMPLE)
def test_kill_leaves_nothing(tmp_path, phase, victim):
    left, what = killmatrix.run_case(tmp_path, f"kill-{phase}-{victim}", phase, victim)
    assert left == [], f"{what} left: {left}"


@pytest.mark.parametrize("phase,victim,user", SAMPLE_USERS)
def test_kill_leaves_nothing_whoever_qemu_runs_as(tmp_path, phase, victim, user):
    left, what = killmatrix.run_case(tmp_path, f"kill-{phase}-{victim}-{user or 'default'}", phase, victim, user=user)
    assert left == [], f"{what} left: {left}"


@pytest.mark.parametrize("phase,victim,features", SAMPLE_FEATURES)
def test_kill_leaves_no_virtiofsd_bind_or_tap(tmp_path, phase, victim, features):
    name = f"kill-{phase}-{victim}" + "".join(f"-{f}" for f in features)
    left, what = killmatrix.run_case(tmp_path, name, phase, victim, features=features, relaunch=True)
    assert "ran to the end" not in what  # the victim existed and was killed
    assert left == [], f"{what} left: {left}"


def test_eight_throwaway_vms_at_once(config):
    zram_before = killmatrix.zram_devices()
    results = {}

    def run(i):
        conf = config(f"[vm]\nname = par{i}\nmemory = 128M\n" + GUEST + "[disk d]\nbackend = zram\nsize = 16M\n",
                      name=f"par{i}.conf")
        results[i] = vmlaunch(conf, "--", "sh", "-c", f"echo vm{i}; exit {i}", timeout=600)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert results[i].returncode == i, results[i].stderr
        assert results[i].stdout == f"vm{i}\n"
        assert killmatrix.leftovers(f"par{i}", zram_before) == []


def test_same_name_twice_refused_and_first_untouched(config):
    conf = config("[vm]\nname = twice\n" + GUEST)
    first = subprocess.Popen([killmatrix.VMLAUNCH, str(conf), "--", "sh", "-c", "echo up; sleep 5; echo done"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "up\n"
        second = vmlaunch(conf, "--", "true")
        assert second.returncode == 1
        assert 'VM "twice" is already running' in second.stderr
        assert (STATE_ROOT / "twice").exists()
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert out == "done\n"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (STATE_ROOT / "twice").exists()
