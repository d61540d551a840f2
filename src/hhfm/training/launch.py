"""Start the ranks of a training command the way the machine expects (the rules' only launcher).

    python -m hhfm.training.launch --ranks MxRxG [--cpus-per-task T] -- pretrain --config ...
        (M nodes, R ranks per node, G GPUs per rank; then an `hhfm` command and its arguments)

The rules pass `--ranks` from the runtime-only config section `distributed` (workflow/rules/common.smk).

* M * R == 1: the command runs in this process's place, exactly as without the launcher.
* inside a SLURM allocation (SLURM_JOB_ID set and `srun` found): `srun --nodes=M --ntasks=M*R
  --ntasks-per-node=R --cpus-per-task=T [--gres=gpu:R*G] --kill-on-bad-exit=1 python -m hhfm.cli ...`
  (every rank sees its node's GPUs and takes the one of its local rank)
  with HHFM_DIST=srun, MASTER_ADDR = the allocation's first node and MASTER_PORT from the job id
  (hhfm.training.distributed reads the ranks from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID).
  Every option is explicit: Snakemake's SLURM jobstep strips the allocation's SLURM_* defaults.
* elsewhere (one machine, M == 1): `torchrun --standalone --nproc-per-node R` (ranks on localhost).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from hhfm.errors import ConfigError


def _allocation_nodes(job_id: str) -> list[str]:
    """Host names of the allocation (from SLURM_JOB_NODELIST, or scontrol when the jobstep removed it)."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True)
        fields = dict(f.split("=", 1) for f in out.stdout.split() if "=" in f)
        nodelist = fields["NodeList"]
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()


def command(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """The argv that starts all ranks of `args.cmd` (and fills `env` with the rendezvous for srun)."""
    world = args.nodes * args.tasks_per_node
    hhfm = [sys.executable, "-m", "hhfm.cli", *args.cmd]
    if world == 1:
        return hhfm
    job_id = env.get("SLURM_JOB_ID")
    if job_id and shutil.which("srun"):
        env.update(HHFM_DIST="srun", MASTER_ADDR=_allocation_nodes(job_id)[0],
                   MASTER_PORT=str(20000 + int(job_id) % 20000))
        srun = ["srun", f"--nodes={args.nodes}", f"--ntasks={world}", f"--ntasks-per-node={args.tasks_per_node}",
                f"--cpus-per-task={args.cpus_per_task}", "--kill-on-bad-exit=1"]
        if args.gpus_per_task:
            srun.append(f"--gres=gpu:{args.tasks_per_node * args.gpus_per_task}")
        return srun + hhfm
    if args.nodes > 1:
        raise ConfigError(f"distributed.nodes = {args.nodes} needs a SLURM allocation (run with --profile slurm); "
                          "outside SLURM only one node's ranks can be started")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.tasks_per_node}",
            "-m", "hhfm.cli", *args.cmd]


def parse_ranks(text: str) -> tuple[int, int, int]:
    """'MxRxG' -> (nodes, ranks per node, GPUs per rank); M, R >= 1, G >= 0."""
    try:
        m, r, g = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ranks must be NODESxRANKSxGPUS (e.g. 1x2x0), got {text!r}") from None
    if m < 1 or r < 1 or g < 0:
        raise argparse.ArgumentTypeError(f"--ranks {text}: nodes and ranks per node must be >= 1, GPUs >= 0")
    return m, r, g


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hhfm.training.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="1x1x0", type=parse_ranks,
                        help="NODESxRANKS_PER_NODExGPUS_PER_RANK, e.g. 2x4x1 (default 1x1x0: one process)")
    parser.add_argument("--cpus-per-task", type=int, default=1, help="CPU cores per rank (srun)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the hhfm command and its arguments")
    args = parser.parse_args(argv)
    args.nodes, args.tasks_per_node, args.gpus_per_task = args.ranks
    args.cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not args.cmd:
        parser.error("no hhfm command given after --")
    env = dict(os.environ)
    argv_ = command(args, env)
    print("launch:", " ".join(argv_), file=sys.stderr, flush=True)
    if argv_[0] == sys.executable and "torch.distributed.run" not in argv_:
        os.execve(sys.executable, argv_, env)
    return subprocess.run(argv_, env=env).returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as err:
        print(f"hhfm launch: error: {err}", file=sys.stderr)
        sys.exit(2)
