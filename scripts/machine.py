#!/usr/bin/env python3
"""machine.py: writes machine.json, the conditions of a bench run.

Everything here is read from the machine (no guesses): CPU model, cores and
PUs from the hwloc topology XML (falling back to /proc/cpuinfo), kernel,
CPU frequency governor, whether it is a VM, the compiler and flags, library
versions from pkg-config, and the git revision.
"""
import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET


def run(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def topology_counts(xml_path):
    counts = {"packages": None, "numa_nodes": None, "cores": None, "pus": None}
    if not xml_path or not os.path.exists(xml_path):
        return counts, None
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError:
        return counts, None
    types = [o.get("type") for o in root.iter("object")]
    counts = {"packages": types.count("Package"), "numa_nodes": types.count("NUMANode"),
              "cores": types.count("Core"), "pus": types.count("PU")}
    model = None
    for info in root.iter("info"):
        if info.get("name") == "CPUModel":
            model = info.get("value")
            break
    return counts, model


def virtualization():
    """(hypervisor, container): e.g. ("kvm", "docker"), "none" where absent."""
    vm = run(["systemd-detect-virt", "--vm"])
    if not vm:
        m = re.search(r"Hypervisor vendor:\s*(\S+)", run(["lscpu"]) or "")
        if m:
            vm = m.group(1).lower()
        elif " hypervisor" in (read("/proc/cpuinfo") or ""):
            vm = "unknown-hypervisor"
        else:
            vm = "none"
    container = run(["systemd-detect-virt", "--container"]) or "none"
    return vm, container


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="machine.json path")
    ap.add_argument("--topology", help="hwloc topology XML written by poolbench topo --xml")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--cflags", default="")
    ap.add_argument("--pins", default="none")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=0)
    args = ap.parse_args()

    counts, model = topology_counts(args.topology)
    cpuinfo = read("/proc/cpuinfo") or ""
    if not model:
        m = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        model = m.group(1).strip() if m else platform.processor() or "unknown"
    if not counts["pus"]:
        counts["pus"] = os.cpu_count()
    virt, container = virtualization()
    libs = {}
    for name, pkg in (("libcurl", "libcurl"), ("hwloc", "hwloc"),
                      ("libmicrohttpd", "libmicrohttpd"), ("openssl", "libcrypto"),
                      ("zlib", "zlib")):
        libs[name] = run(["pkg-config", "--modversion", pkg]) or "unknown"
    rev = run(["git", "rev-parse", "HEAD"]) or "unknown"
    if rev != "unknown" and run(["git", "status", "--porcelain", "--untracked-files=no"]):
        rev += "-dirty"
    cc_version = (run([args.cc, "--version"]) or "unknown").splitlines()[0]
    doc = {
        "schema_version": 1,
        "host": socket.gethostname(),
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": model,
        "packages": counts["packages"],
        "numa_nodes": counts["numa_nodes"],
        "cores": counts["cores"],
        "pus": counts["pus"],
        "online_cpus": os.cpu_count(),
        "memory_kb": int(re.search(r"MemTotal:\s*(\d+)", read("/proc/meminfo") or "MemTotal: 0")
                         .group(1)),
        "kernel": platform.release(),
        "os": (re.search(r'PRETTY_NAME="([^"]+)"', read("/etc/os-release") or "") or
               re.search("(.*)", "unknown")).group(1),
        "governor": read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or
                    "unavailable (no cpufreq: typical of a VM)",
        "virtualization": virt,
        "container": container,
        "is_vm": virt != "none",
        "compiler": cc_version,
        "cflags": args.cflags,
        "libraries": libs,
        "hyperfine": run(["hyperfine", "--version"]) or "unknown",
        "git_revision": rev,
        "profile": args.profile,
        "pin_policies": args.pins,
        "reps": args.reps,
        "warmup": args.warmup,
        "topology_file": os.path.basename(args.topology) if args.topology else None,
        # The hwloc topology itself (lstopo's XML format), so machine.json
        # alone describes the machine.
        "topology_xml": read(args.topology) if args.topology else None,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
