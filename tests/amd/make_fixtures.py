#!/usr/bin/env python3
"""make_fixtures.py — writes the AMD / Intel / DRM fdinfo fixture trees under
tests/fixtures (run it after changing a value; the trees are committed).

Each fixture is a folder with sys/ and proc/ laid out as the kernel does:
  sys/class/drm/cardN -> ../../devices/pci0000:00/.../0000:03:00.0/drm/cardN
  .../0000:03:00.0/drm/cardN/device -> ../../../0000:03:00.0
  .../0000:03:00.0/driver -> .../bus/pci/drivers/amdgpu
  .../0000:03:00.0/{vendor,device,mem_info_*,gpu_busy_percent,pp_dpm_*,...}
  .../0000:03:00.0/hwmon/hwmonN/{name,temp*_input,temp*_label,...}
  proc/PID/{stat,comm,status,cmdline}, proc/PID/fd/N -> /dev/dri/renderD128
  (dangling on purpose: /dev/dri does not exist here), proc/PID/fdinfo/N.
Tests read the values back from these files; nothing here is expected output.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fixtures")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def link(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


def pci_device(root, chain, card, driver, files, hwmon=None, hwmon_index=0, render=128):
    """chain: PCI path below pci0000:00, e.g. ["0000:00:01.1", ..., "0000:03:00.0"]."""
    sys_ = os.path.join(root, "sys")
    dev_rel = os.path.join("devices", "pci0000:00", *chain)
    dev = os.path.join(sys_, dev_rel)
    os.makedirs(dev, exist_ok=True)
    for name, value in files.items():
        write(os.path.join(dev, name), value)
    os.makedirs(os.path.join(sys_, "bus/pci/drivers", driver), exist_ok=True)
    link(os.path.join(dev, "driver"),
         os.path.relpath(os.path.join(sys_, "bus/pci/drivers", driver), dev))
    for node in ("card%d" % card, "renderD%d" % render):
        d = os.path.join(dev, "drm", node)
        os.makedirs(d, exist_ok=True)
        link(os.path.join(d, "device"), "../../../" + os.path.basename(dev))
        link(os.path.join(sys_, "class/drm", node),
             os.path.relpath(d, os.path.join(sys_, "class/drm")))
    # a connector entry the backends must skip
    conn = os.path.join(dev, "drm", "card%d" % card, "card%d-DP-1" % card)
    write(os.path.join(conn, "status"), "disconnected\n")
    link(os.path.join(sys_, "class/drm", "card%d-DP-1" % card),
         os.path.relpath(conn, os.path.join(sys_, "class/drm")))
    if hwmon is not None:
        h = os.path.join(dev, "hwmon", "hwmon%d" % hwmon_index)
        for name, value in hwmon.items():
            write(os.path.join(h, name), value)
    return dev


def kfd_nodes(root, gpus):
    """The KFD topology (sys/class/kfd/kfd/topology/nodes/N/properties) as
    the ROCm kernel driver lays it out: node 0 the CPU (gfx_target_version 0),
    then one node per GPU. gpus: [(gfx_target_version, drm_render_minor)],
    where gfx_target_version is major * 10000 + minor * 100 + stepping
    (gfx90a: 90010, gfx942: 90402, gfx1100: 110000)."""
    base = os.path.join(root, "sys/class/kfd/kfd/topology/nodes")
    write(os.path.join(base, "0", "properties"),
          "cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\ndrm_render_minor 0\n")
    for i, (gfx, minor) in enumerate(gpus, 1):
        write(os.path.join(base, str(i), "properties"),
              "cpu_cores_count 0\nsimd_count 256\nlocation_id 768\ndomain 0\n"
              "gfx_target_version %d\ndrm_render_minor %d\n" % (gfx, minor))


def host_files(root):
    proc = os.path.join(root, "proc")
    write(os.path.join(proc, "meminfo"),
          "MemTotal:       65536000 kB\nMemFree:        30000000 kB\n"
          "MemAvailable:   50000000 kB\nSwapTotal:       8388604 kB\nSwapFree:        8388604 kB\n")
    write(os.path.join(proc, "loadavg"), "0.50 0.40 0.30 1/300 4000\n")
    write(os.path.join(proc, "sys/kernel/osrelease"), "6.8.0-gwtest-amd64\n")
    write(os.path.join(proc, "stat"),
          "cpu  100 0 50 1000 10 0 5 0 0 0\ncpu0 50 0 25 500 5 0 2 0 0 0\n"
          "cpu1 50 0 25 500 5 0 3 0 0 0\n")


def process(root, pid, comm, fds, uid=1000, cmdline=None, start=5000):
    """fds: {fdnum: (link target, fdinfo text)}"""
    p = os.path.join(root, "proc", str(pid))
    write(os.path.join(p, "stat"),
          "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %d 1000000 100 "
          "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n" % (pid, comm, pid, pid, start))
    write(os.path.join(p, "comm"), comm + "\n")
    write(os.path.join(p, "status"),
          "Name:\t%s\nUmask:\t0022\nState:\tS\nTgid:\t%d\nUid:\t%d\t%d\t%d\t%d\n" % (comm, pid, uid, uid, uid, uid))
    args = cmdline or [comm]
    write(os.path.join(p, "cmdline"), "\0".join(args) + "\0")
    os.makedirs(os.path.join(p, "fd"), exist_ok=True)
    os.makedirs(os.path.join(p, "fdinfo"), exist_ok=True)
    for num, (target, info) in sorted(fds.items()):
        link(os.path.join(p, "fd", str(num)), target)
        write(os.path.join(p, "fdinfo", str(num)), info)


PLAIN = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t%d\n"


def plain_fds(base=0):
    return {
        0: ("/dev/null", PLAIN % 5),
        1: ("pipe:[40001]", PLAIN % 40001),
        2: ("socket:[40002]", PLAIN % 40002),
        3 + base: ("/usr/lib/x86_64-linux-gnu/libc.so.6", PLAIN % 777),
    }


def amd_fdinfo(pdev, client, vram_kib, gtt_kib, engines, extra=""):
    text = ("pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1045\n"
            "drm-driver:\tamdgpu\ndrm-pdev:\t%s\ndrm-client-id:\t%d\npasid:\t%d\n"
            "drm-memory-vram:\t%d KiB\ndrm-memory-gtt: \t%d KiB\ndrm-memory-cpu: \t0 KiB\n"
            "amd-memory-visible-vram:\t%d KiB\n" % (pdev, client, 32768 + client, vram_kib, gtt_kib, vram_kib))
    for name, ns in engines:
        text += "drm-engine-%s:\t%d ns\n" % (name, ns)
    return text + extra


def rdna3_files(vram_used, busy):
    return {
        "vendor": "0x1002\n", "device": "0x744c\n", "class": "0x030000\n",
        "mem_info_vram_total": "25753026560\n", "mem_info_vram_used": "%d\n" % vram_used,
        "mem_info_vis_vram_total": "25753026560\n", "mem_info_vis_vram_used": "1073741824\n",
        "mem_info_gtt_total": "16777216000\n", "mem_info_gtt_used": "52428800\n",
        "gpu_busy_percent": "%d\n" % busy, "mem_busy_percent": "12\n",
        "pp_dpm_sclk": "0: 500Mhz\n1: 1801Mhz *\n2: 2526Mhz\n",
        "pp_dpm_mclk": "0: 96Mhz\n1: 456Mhz\n2: 772Mhz\n3: 1249Mhz *\n",
        "unique_id": "5a1c0e2fb8e31d2a\n",
        "current_link_speed": "16.0 GT/s PCIe\n", "current_link_width": "16\n",
        "max_link_speed": "16.0 GT/s PCIe\n", "max_link_width": "16\n",
        # present but never to be read (the kernel sleeps 1 s inside it)
        "pcie_bw": "0 0 128\n",
    }


RDNA3_HWMON = {
    "name": "amdgpu\n",
    "temp1_input": "45000\n", "temp1_label": "edge\n", "temp1_crit": "100000\n",
    "temp1_crit_hyst": "-273150\n", "temp1_emergency": "105000\n",
    "temp2_input": "58000\n", "temp2_label": "junction\n", "temp2_crit": "110000\n",
    "temp2_crit_hyst": "-273150\n", "temp2_emergency": "115000\n",
    "temp3_input": "62000\n", "temp3_label": "mem\n", "temp3_crit": "100000\n",
    "temp3_crit_hyst": "-273150\n", "temp3_emergency": "105000\n",
    "freq1_input": "1801000000\n", "freq1_label": "sclk\n",
    "freq2_input": "1249000000\n", "freq2_label": "mclk\n",
    "power1_average": "85000000\n", "power1_input": "87000000\n", "power1_label": "PPT\n",
    "power1_cap": "303000000\n", "power1_cap_min": "0\n", "power1_cap_max": "327000000\n",
    "power1_cap_default": "303000000\n",
    "fan1_input": "1200\n", "fan1_min": "0\n", "fan1_max": "3300\n", "pwm1": "76\n",
    "pwm1_enable": "2\n", "in0_input": "850\n", "in0_label": "vddgfx\n",
}

CHAIN_03 = ["0000:00:01.1", "0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]


def make_rdna3(root):
    pci_device(root, CHAIN_03, 0, "amdgpu", rdna3_files(8589934592, 37), RDNA3_HWMON, 2)
    kfd_nodes(root, [(110000, 128)])  # RX 7900 XTX: gfx1100
    host_files(root)
    fds = plain_fds()
    fds[5] = ("/dev/dri/renderD128",
              amd_fdinfo("0000:03:00.0", 11, 1048576, 16384,
                         [("gfx", 5000000000), ("compute", 2000000000), ("dma", 10000)]))
    fds[6] = ("/dev/kfd", PLAIN % 9)
    process(root, 1234, "python3", fds, cmdline=["python3", "train.py", "--epochs", "3"])
    process(root, 1300, "bash", plain_fds())


def make_mi300(root):
    files = {
        "vendor": "0x1002\n", "device": "0x74a1\n",
        "product_name": "AMD Instinct MI300X\n", "unique_id": "0x8a4c6e1f20b3d5c7\n",
        "serial_number": "692251001124\n",
        "mem_info_vram_total": "206158430208\n", "mem_info_vram_used": "283115520\n",
        "mem_info_vis_vram_total": "206158430208\n", "mem_info_vis_vram_used": "283115520\n",
        "mem_info_gtt_total": "1082331758592\n", "mem_info_gtt_used": "11534336\n",
        "gpu_busy_percent": "0\n", "mem_busy_percent": "0\n",
        "pp_dpm_sclk": "S: 19Mhz\n0: 500Mhz\n1: 1700Mhz *\n2: 2100Mhz\n",
        "pp_dpm_mclk": "0: 900Mhz\n1: 1300Mhz *\n",
        "current_link_speed": "32.0 GT/s PCIe\n", "current_link_width": "16\n",
        "max_link_speed": "32.0 GT/s PCIe\n", "max_link_width": "16\n",
        # RAS: memory-controller ECC counts as the kernel prints them (with
        # the deferred count of newer kernels)
        "ras/umc_err_count": "ue: 1\nce: 27\nde: 0\n",
        "ras/gfx_err_count": "ue: 0\nce: 0\n",
    }
    hw = {
        "name": "amdgpu\n",
        # no temp1 on MI300: junction and memory only, no emergency files
        "temp2_input": "52000\n", "temp2_label": "junction\n", "temp2_crit": "105000\n",
        "temp3_input": "48000\n", "temp3_label": "mem\n", "temp3_crit": "95000\n",
        "power1_input": "350000000\n", "power1_label": "PPT\n",
        "power1_cap": "750000000\n", "power1_cap_max": "750000000\n",
        "power1_cap_default": "750000000\n",
    }
    pci_device(root, ["0000:00:03.1", "0000:0b:00.0", "0000:0c:00.0"], 1, "amdgpu", files, hw, 5,
               render=129)
    kfd_nodes(root, [(90402, 129)])  # MI300X: gfx942
    host_files(root)
    # ROCm's out-of-tree amdgpu-dkms has a module version
    write(os.path.join(root, "sys/module/amdgpu/version"), "6.8.5\n")


def make_apu(root):
    files = {
        "vendor": "0x1002\n", "device": "0x15bf\n",
        "mem_info_vram_total": "536870912\n", "mem_info_vram_used": "268435456\n",
        "mem_info_vis_vram_total": "536870912\n", "mem_info_vis_vram_used": "268435456\n",
        "mem_info_gtt_total": "16464019456\n", "mem_info_gtt_used": "1610612736\n",
        "gpu_busy_percent": "5\n",
        "pp_dpm_sclk": "0: 800Mhz *\n1: 2700Mhz\n",
        "pp_dpm_mclk": "0: 400Mhz *\n1: 800Mhz\n",
    }
    hw = {
        "name": "amdgpu\n",
        "temp1_input": "41000\n", "temp1_label": "edge\n",
        "in0_input": "1100\n", "in0_label": "vddgfx\n",
        "in1_input": "950\n", "in1_label": "vddnb\n",
        "freq1_input": "800000000\n", "freq1_label": "sclk\n",
        "power1_average": "11000000\n", "power1_label": "PPT\n",
    }
    pci_device(root, ["0000:00:08.1", "0000:05:00.0"], 0, "amdgpu", files, hw, 4)
    kfd_nodes(root, [(110003, 128)])  # Radeon 780M (Phoenix): gfx1103
    host_files(root)
    fds = plain_fds()
    fds[9] = ("/dev/dri/renderD128",
              amd_fdinfo("0000:05:00.0", 4, 131072, 524288, [("gfx", 700000000)]))
    process(root, 2222, "Xwayland", fds)


def make_arc_xe(root):
    files = {
        "vendor": "0x8086\n", "device": "0x56a0\n",
        "tile0/physical_vram_size_bytes": "17179869184\n",
        "tile0/gt0/freq0/act_freq": "2100\n", "tile0/gt0/freq0/cur_freq": "2400\n",
        "tile0/gt0/freq0/max_freq": "2400\n", "tile0/gt0/freq0/min_freq": "300\n",
    }
    hw = {
        "name": "xe\n",
        "temp2_input": "48000\n", "temp2_label": "pkg\n",
        "temp3_input": "55000\n", "temp3_label": "vram\n",
        "energy1_input": "123456789012\n", "energy1_label": "card\n",
        "power1_max": "225000000\n", "power1_label": "card\n",
    }
    pci_device(root, ["0000:00:01.0", "0000:01:00.0", "0000:02:01.0", "0000:03:00.0"], 0, "xe",
               files, hw, 3)
    host_files(root)
    fds = plain_fds()
    fds[7] = ("/dev/dri/renderD128",
              "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1047\n"
              "drm-driver:\txe\ndrm-client-id:\t7\ndrm-pdev:\t0000:03:00.0\n"
              "drm-total-system:\t4096 KiB\ndrm-shared-system:\t0\ndrm-active-system:\t0\n"
              "drm-resident-system:\t4096 KiB\n"
              "drm-total-gtt:\t8192 KiB\ndrm-shared-gtt:\t0\ndrm-resident-gtt:\t6144 KiB\n"
              "drm-total-vram0:\t2097152 KiB\ndrm-shared-vram0:\t0\ndrm-active-vram0:\t0\n"
              "drm-resident-vram0:\t1048576 KiB\n"
              "drm-cycles-rcs:\t28257900\ndrm-total-cycles-rcs:\t7655183225\n"
              "drm-cycles-bcs:\t0\ndrm-total-cycles-bcs:\t7655183225\n"
              "drm-cycles-vcs:\t0\ndrm-total-cycles-vcs:\t7655183225\n"
              "drm-engine-capacity-vcs:\t2\n"
              "drm-cycles-vecs:\t0\ndrm-total-cycles-vecs:\t7655183225\n"
              "drm-engine-capacity-vecs:\t2\n"
              "drm-cycles-ccs:\t0\ndrm-total-cycles-ccs:\t7655183225\n"
              "drm-engine-capacity-ccs:\t4\n")
    process(root, 4321, "blender", fds)


def make_igpu_i915(root):
    files = {"vendor": "0x8086\n", "device": "0x46a6\n"}
    dev = pci_device(root, ["0000:00:02.0"], 0, "i915", files, None)
    card = os.path.join(dev, "drm", "card0")
    write(os.path.join(card, "gt_act_freq_mhz"), "350\n")
    write(os.path.join(card, "gt_cur_freq_mhz"), "400\n")
    write(os.path.join(card, "gt_max_freq_mhz"), "1400\n")
    write(os.path.join(card, "gt_min_freq_mhz"), "100\n")
    host_files(root)
    fds = plain_fds()
    fds[12] = ("/dev/dri/renderD128",
               "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1049\n"
               "drm-driver:\ti915\ndrm-pdev:\t0000:00:02.0\ndrm-client-id:\t3\n"
               "drm-total-system0:\t204800 KiB\ndrm-shared-system0:\t0\n"
               "drm-active-system0:\t0\ndrm-resident-system0:\t102400 KiB\n"
               "drm-purgeable-system0:\t0\n"
               "drm-total-stolen-system0:\t0\ndrm-resident-stolen-system0:\t0\n"
               "drm-engine-render:\t123456789 ns\ndrm-engine-copy:\t0 ns\n"
               "drm-engine-video:\t5000 ns\ndrm-engine-capacity-video:\t2\n"
               "drm-engine-video-enhance:\t0 ns\n")
    process(root, 777, "firefox-esr", fds, cmdline=["/usr/lib/firefox-esr/firefox-esr"])


def make_two_amd(root):
    pci_device(root, CHAIN_03, 0, "amdgpu", rdna3_files(4294967296, 80), RDNA3_HWMON, 2)
    rdna2 = dict(rdna3_files(2147483648, 20))
    rdna2.update({"device": "0x73bf\n", "mem_info_vram_total": "17163091968\n",
                  "mem_info_vis_vram_total": "268435456\n", "mem_info_vis_vram_used": "134217728\n",
                  "unique_id": "2c6a8e1b30f5d791\n"})
    hw2 = dict(RDNA3_HWMON)
    hw2.update({"temp1_input": "40000\n", "freq1_input": "500000000\n", "power1_average": "30000000\n",
                "fan1_input": "0\n", "pwm1": "0\n"})
    pci_device(root, ["0000:40:01.1", "0000:41:00.0", "0000:42:00.0", "0000:43:00.0"], 1, "amdgpu",
               rdna2, hw2, 3, render=129)
    kfd_nodes(root, [(110000, 128), (100300, 129)])  # gfx1100, RX 6900 XT: gfx1030
    host_files(root)
    # pid 100: client 21 on card0 through fds 5 and 6 (dup), client 31 on card1
    c21 = amd_fdinfo("0000:03:00.0", 21, 2097152, 65536, [("gfx", 1000000000), ("compute", 3000000000)])
    c31 = amd_fdinfo("0000:43:00.0", 31, 524288, 8192, [("compute", 1500000000)])
    fds = plain_fds()
    fds.update({5: ("/dev/dri/renderD128", c21), 6: ("/dev/dri/renderD128", c21),
                7: ("/dev/dri/renderD129", c31), 8: ("/dev/kfd", PLAIN % 9)})
    process(root, 100, "trainer", fds, cmdline=["python3", "-m", "trainer"])
    # pid 200: forked from 100, holds the same client 21 (counted once, for pid 100)
    fds = plain_fds()
    fds[4] = ("/dev/dri/renderD128", c21)
    process(root, 200, "trainer-worker", fds)
    # pid 300: a game on card0, graphics only
    fds = plain_fds()
    fds[9] = ("/dev/dri/renderD128",
              amd_fdinfo("0000:03:00.0", 41, 1572864, 32768, [("gfx", 9000000000), ("dec", 20000000)]))
    process(root, 300, "game", fds, uid=1001)
    # pid 400: amdgpu keys of kernels 5.14-5.18 on card1
    fds = plain_fds()
    fds[3] = ("/dev/dri/renderD129",
              "pos:\t0\nflags:\t02100002\nmnt_id:\t24\npdev:\t0000:43:00.0\npasid:\t32790\n"
              "vram mem:\t262144 kB\ngtt mem:\t4096 kB\ncpu mem:\t0 kB\ngfx0:\t12.50%\n")
    process(root, 400, "oldtool", fds)
    # pid 500: nothing on a GPU
    process(root, 500, "sshd", plain_fds(), uid=0)


def make_oldkernel(root):
    pci_device(root, CHAIN_03, 0, "amdgpu", rdna3_files(1073741824, 3), RDNA3_HWMON, 2)
    host_files(root)
    fds = plain_fds()
    fds[5] = ("/dev/dri/renderD128", "pos:\t0\nflags:\t02100002\nmnt_id:\t24\n")
    process(root, 900, "glxgears", fds)


FIXTURES = {
    "rdna3": make_rdna3,
    "mi300": make_mi300,
    "apu": make_apu,
    "arc_xe": make_arc_xe,
    "igpu_i915": make_igpu_i915,
    "two_amd": make_two_amd,
    "oldkernel": make_oldkernel,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    for name, fn in FIXTURES.items():
        root = os.path.join(out, name)
        if os.path.exists(root):
            shutil.rmtree(root)
        fn(root)
    print("wrote", ", ".join(FIXTURES), "under", out)


if __name__ == "__main__":
    main()
