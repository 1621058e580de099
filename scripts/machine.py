#!/usr/bin/env python3
"""machine.py: writes machine.json, the conditions of a bench run.

Everything here is read from the machine (no guesses): CPU model, cores and
PUs from the hwloc topology XML (falling back to /proc/cpuinfo), kernel,
whether it is a VM, the compiler and flags, library versions from
pkg-config, the git revision, and what makes timings noisy or
unrepresentative: frequency boost (turbo), governor and current
frequencies, isolated CPUs, address-space randomisation, and whether the
poolbench binary is an optimised build or a -O0 / sanitizer one.
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


def cpufreq():
    """Boost (turbo) state, governors and current frequencies, as the kernel
    exposes them; 'unavailable' where it does not (typical of a VM)."""
    boost = read("/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        boost = "on" if boost == "1" else "off"
    else:
        no_turbo = read("/sys/devices/system/cpu/intel_pstate/no_turbo")
        boost = ("off" if no_turbo == "1" else "on") if no_turbo is not None else \
            "unavailable (no cpufreq boost control)"
    freqs, governors = {}, set()
    for cpu in sorted(os.listdir("/sys/devices/system/cpu")):
        if not re.fullmatch(r"cpu\d+", cpu):
            continue
        f = read("/sys/devices/system/cpu/%s/cpufreq/scaling_cur_freq" % cpu)
        if f is not None and f.isdigit():
            freqs[cpu] = int(f)
        g = read("/sys/devices/system/cpu/%s/cpufreq/scaling_governor" % cpu)
        if g:
            governors.add(g)
    return boost, freqs or "unavailable (no cpufreq: typical of a VM)", sorted(governors)


def build_kind(poolbench, cflags):
    """What the poolbench binary says of itself (poolbench --version: 'build:
    optimized', 'unoptimized+address', ...), else what the flags imply."""
    out = run([poolbench, "--version"]) if poolbench else None
    m = re.search(r"build: ([\w+]+)", out or "")
    if m:
        kind, source = m.group(1), "poolbench --version"
    else:
        opt = re.findall(r"(?:^|\s)-O(\w*)", cflags or "")
        san = re.findall(r"-fsanitize=([\w,]+)", cflags or "")
        kind = "optimized" if opt and opt[-1] != "0" else "unoptimized"  # the last -O wins
        if san:
            kind += "+" + san[-1]
        source = "compiler flags"
    return {"kind": kind, "optimized": kind.split("+")[0] == "optimized",
            "sanitizer": kind.split("+", 1)[1] if "+" in kind else None, "source": source}


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
    ap.add_argument("--poolbench", help="the poolbench binary (its --version names its build kind)")
    args = ap.parse_args()

    counts, model = topology_counts(args.topology)
    cpuinfo = read("/proc/cpuinfo") or ""
    if not model:
        m = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        model = m.group(1) if m else platform.processor() or "unknown"
    model = " ".join(model.split())  # /proc and hwloc pad it with blanks
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
    boost, freqs, governors = cpufreq()
    aslr = read("/proc/sys/kernel/randomize_va_space")
    doc = {
        "schema_version": 2,
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
        "governor": ", ".join(governors) or "unavailable (no cpufreq: typical of a VM)",
        "boost": boost,
        "scaling_cur_freq_khz": freqs,
        "isolated_cpus": read("/sys/devices/system/cpu/isolated") or "none",
        "nohz_full": read("/sys/devices/system/cpu/nohz_full") or "none",
        "aslr": {"0": "0 (off)", "1": "1 (stack, mmap, vdso)", "2": "2 (full, heap too)"}.get(
            aslr, aslr or "unknown"),
        "virtualization": virt,
        "container": container,
        "is_vm": virt != "none",
        "compiler": cc_version,
        "cflags": args.cflags,
        "build": build_kind(args.poolbench, args.cflags),
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
