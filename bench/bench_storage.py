"""Storage bench: a large file in and out of LocalStorage and S3Storage, memory and speed.

    python bench/bench_storage.py [--size-mib 1024]

Each step runs in a fresh subprocess so its peak RSS is its own:

* baseline put: ``shutil.copyfileobj`` of a generated stream to a file (+ fsync)
* baseline get: reading that file back in 1 MiB chunks
* local put / get: ``LocalStorage.put`` of the same generated stream, then
  ``open_range`` of the whole object
* boto3 put / get: plain boto3 against the same moto server (``upload_fileobj``
  with its default TransferConfig, ``get_object`` body read in 1 MiB chunks), a
  second baseline that shows what S3Storage itself costs on top of boto3 + moto
* s3 put / get: the same through ``S3Storage`` against that moto server

The generated stream is a file-like object that makes its bytes on demand (one
1 MiB random block repeated), so the input never sits in memory. moto keeps
objects in memory: it runs in its own subprocess and its RSS is reported apart;
the RSS that must stay flat is the bench step's own.

Throughput is in MB/s (10^6 bytes). Peak RSS growth is VmHWM at the end of a
step minus VmRSS just before it (VmHWM is reset through /proc/self/clear_refs
first). Exit status 1 when any step's growth exceeds --max-rss-growth-mib.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
BUCKET = "quantoxbay-bench"
STEPS = [
    "baseline-put",
    "baseline-get",
    "local-put",
    "local-get",
    "boto3-put",
    "boto3-get",
    "s3-put",
    "s3-get",
]


class GeneratedStream:
    """``size`` bytes made on demand: a random 1 MiB block repeated; never held whole."""

    def __init__(self, size: int) -> None:
        self._remaining = size
        self._block = os.urandom(MIB)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise ValueError("GeneratedStream refuses read() of everything")
        n = min(n, self._remaining)
        if n <= 0:
            return b""
        self._remaining -= n
        if n <= MIB:
            return self._block[:n]
        return b"".join(self._block[: min(MIB, n - off)] for off in range(0, n, MIB))


def _status_kib(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _moto_server() -> None:
    """Child mode: run a moto server on 127.0.0.1, print its port, stop at stdin EOF."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


def _make_storage(kind: str, workdir: Path, endpoint: str | None) -> Any:
    if kind == "local":
        from quantoxbay.storage import LocalStorage

        return LocalStorage(workdir / "local")
    from quantoxbay.storage import S3Storage

    return S3Storage(BUCKET, "bench", endpoint_url=endpoint)


def _run_step(step: str, size: int, workdir: Path, endpoint: str | None) -> dict[str, Any]:
    """Child mode: one step, measured; returns the figures."""
    kind, op = step.split("-")
    storage = None if kind in ("baseline", "boto3") else _make_storage(kind, workdir, endpoint)
    client: Any = _make_storage("s3", workdir, endpoint).client if kind == "boto3" else None
    baseline_file = workdir / "baseline.bin"
    stream = GeneratedStream(size)
    if storage is not None and op == "get":
        storage.size("big.bin")  # warm the connection / stat outside the timing
    if client is not None:
        client.list_buckets()  # same warm-up for plain boto3
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    moved = 0
    if step == "baseline-put":
        with open(baseline_file, "wb") as out:
            shutil.copyfileobj(cast(BinaryIO, stream), out, MIB)
            out.flush()
            os.fsync(out.fileno())
        moved = baseline_file.stat().st_size
    elif step == "baseline-get":
        with open(baseline_file, "rb") as fh:
            while chunk := fh.read(MIB):
                moved += len(chunk)
    elif step == "boto3-put":
        client.upload_fileobj(stream, BUCKET, "raw/big.bin")
        moved = client.head_object(Bucket=BUCKET, Key="raw/big.bin")["ContentLength"]
    elif step == "boto3-get":
        body = client.get_object(Bucket=BUCKET, Key="raw/big.bin")["Body"]
        while chunk := body.read(MIB):
            moved += len(chunk)
    elif op == "put":
        assert storage is not None
        moved = storage.put("big.bin", cast(BinaryIO, stream))
    else:
        assert storage is not None
        for chunk in storage.open_range("big.bin"):
            moved += len(chunk)
    seconds = time.perf_counter() - t0
    if moved != size:
        raise SystemExit(f"{step}: moved {moved} bytes, expected {size}")
    hwm = _status_kib("VmHWM")
    return {
        "step": step,
        "seconds": seconds,
        "bytes": moved,
        "mb_per_s": moved / seconds / 1e6,
        "rss_before_mb": rss_before / 1024,
        "peak_growth_mb": max(0, hwm - rss_before) / 1024,
        "hwm_reset": reset,
    }


def _spawn_step(step: str, args: argparse.Namespace, workdir: Path, endpoint: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_step", step, "--size-mib", str(args.size_mib), "--dir", str(workdir)]
    if endpoint:
        cmd += ["--_endpoint", endpoint]
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--skip-s3", action="store_true", help="only the local backend")
    parser.add_argument("--max-rss-growth-mib", type=float, default=128.0, help="limit for 'flat' memory")
    parser.add_argument("--_step", help=argparse.SUPPRESS)
    parser.add_argument("--_endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--_moto-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.size_mib * MIB

    if args._moto_server:
        _moto_server()
        return 0
    if args._step:
        print(json.dumps(_run_step(args._step, size, args.dir, args._endpoint)))
        return 0

    own_tmp = args.dir is None
    workdir = Path(tempfile.mkdtemp(prefix="qb-bench-")) if own_tmp else args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    moto = None
    endpoint = None
    results: dict[str, dict[str, Any]] = {}
    moto_peak_mb = 0.0
    try:
        steps = [s for s in STEPS if not (args.skip_s3 and s.startswith(("s3", "boto3")))]
        if not args.skip_s3:
            moto = subprocess.Popen(
                [sys.executable, __file__, "--_moto-server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert moto.stdout is not None
            endpoint = f"http://127.0.0.1:{int(moto.stdout.readline())}"
            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            from quantoxbay.storage import S3Storage

            S3Storage(BUCKET, endpoint_url=endpoint).client.create_bucket(Bucket=BUCKET)
        print(f"storage bench: {args.size_mib} MiB, work dir {workdir}, moto {endpoint or 'skipped'}")
        for step in steps:
            r = _spawn_step(step, args, workdir, endpoint)
            results[step] = r
            print(
                f"{step:13s} {r['bytes'] / MIB:7.0f} MiB in {r['seconds']:7.2f} s"
                f" = {r['mb_per_s']:8.1f} MB/s,"
                f" peak RSS growth {r['peak_growth_mb']:6.1f} MB (RSS before {r['rss_before_mb']:.0f} MB)"
                + ("" if r["hwm_reset"] else " [VmHWM not reset]"),
                flush=True,
            )
        if moto is not None:
            moto_peak_mb = _status_kib("VmHWM", str(moto.pid)) / 1024
    finally:
        if moto is not None:
            assert moto.stdin is not None
            moto.stdin.close()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)

    base_put = results["baseline-put"]["mb_per_s"]
    base_get = results["baseline-get"]["mb_per_s"]
    for kind in ("local", "s3"):
        if f"{kind}-put" in results:
            print(f"{kind} put ratio vs copyfileobj: {results[f'{kind}-put']['mb_per_s'] / base_put:.2f}")
            print(f"{kind} get ratio vs file read: {results[f'{kind}-get']['mb_per_s'] / base_get:.2f}")
    if "s3-put" in results:
        for op in ("put", "get"):
            ratio = results[f"s3-{op}"]["mb_per_s"] / results[f"boto3-{op}"]["mb_per_s"]
            print(f"s3 {op} ratio vs plain boto3 on the same moto: {ratio:.2f}")
    ours = [r for r in results.values() if r["step"].startswith(("local", "s3"))]
    worst = max(ours, key=lambda r: r["peak_growth_mb"])
    print(
        f"peak RSS growth: {worst['peak_growth_mb']:.0f} MB"
        f" (worst step: {worst['step']}, file {args.size_mib} MiB)"
    )
    if moto is not None:
        print(f"moto server process peak RSS (holds the objects, not ours): {moto_peak_mb:.0f} MB")
    flat = worst["peak_growth_mb"] <= args.max_rss_growth_mib
    print(f"memory flat: {'yes' if flat else 'NO'} (limit {args.max_rss_growth_mib:.0f} MB)")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
