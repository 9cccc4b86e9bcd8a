// cleanup.go checks the machine before the node starts and sweeps up after it stops: container
// shims still running, mounts under the node's directory (pod volumes, network namespaces,
// container root filesystems), the kubelet's cgroups and the kernel parameters it changed. Each
// sweep is idempotent, so a node killed with SIGKILL is cleaned up by the next start or stop.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cniBinDir is where Debian's containernetworking-plugins puts the plugins.
const cniBinDir = "/usr/lib/cni"

// preflight names what is missing in words that say how to get it.
func preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("the node runs containers and must run as root")
	}
	var missing []string
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, filepath.Join(cniBinDir, plugin))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: install the Debian packages containerd, runc, containernetworking-plugins and iproute2 (scripts/node.sh does)", strings.Join(missing, ", "))
	}
	return nil
}

// killStrayShims ends containerd shims of this node that outlived containerd (a shim keeps its
// container running on purpose when containerd stops). They are found by the containerd
// address on their command line.
func killStrayShims(l *layout) {
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) || !bytes.Contains(cmdline, []byte(l.containerdSocket)) {
			continue
		}
		fmt.Printf("node: killing shim %d left running\n", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeShimSocketDir removes containerd's fixed directory for shim sockets, /run/containerd/s,
// and its parent, if they are empty (os.Remove refuses otherwise), as they are once this node's
// shims are gone and no other containerd runs here.
func removeShimSocketDir() {
	_ = os.Remove("/run/containerd/s")
	_ = os.Remove("/run/containerd")
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	for attempt := 0; attempt < 3; attempt++ {
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				fmt.Printf("node: unmounting %s: %v\n", m, err)
			}
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		fmt.Printf("node: still mounted under %s: %s\n", dir, strings.Join(left, ", "))
	}
}

func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		point := unescapeMountPath(fields[4])
		if point == dir || strings.HasPrefix(point, dir+"/") {
			mounts = append(mounts, point)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, and so on).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeKubepodsCgroups removes the cgroups the kubelet made for pods (cgroupfs driver: a
// `kubepods` tree in every cgroup v1 hierarchy), deepest first. Processes still in them are
// killed first; by now there should be none.
func removeKubepodsCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if unified := "/sys/fs/cgroup/unified/kubepods"; exists(unified) {
		roots = append(roots, unified)
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, dir := range dirs {
			killProcessesIn(dir)
			for attempt := 0; attempt < 50; attempt++ {
				if err := syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				time.Sleep(20 * time.Millisecond) // a killed process leaves its cgroup asynchronously
			}
		}
	}
}

func killProcessesIn(cgroup string) {
	procs, err := os.ReadFile(filepath.Join(cgroup, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, line := range strings.Fields(string(procs)) {
		if pid, err := strconv.Atoi(line); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeNodeDir removes the node's directory after making sure nothing is mounted in it
// (RemoveAll would otherwise descend into a mount and delete what it shows).
func removeNodeDir(dir string) {
	unmountUnder(dir)
	if left := mountsUnder(dir); len(left) > 0 {
		fmt.Printf("node: leaving %s in place: mounts remain\n", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Printf("node: removing %s: %v\n", dir, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// kernelTunables are the parameters the kubelet sets on start (setupKernelTunables, unless
// protectKernelDefaults, which would make it refuse this machine instead).
var kernelTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

type savedTunables map[string]string

func saveKernelTunables() savedTunables {
	saved := savedTunables{}
	for _, name := range kernelTunables {
		if value, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			saved[name] = strings.TrimSpace(string(value))
		}
	}
	return saved
}

func (s savedTunables) restore() {
	for name, value := range s {
		path := filepath.Join("/proc/sys", name)
		if current, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(current)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			fmt.Printf("node: restoring %s: %v\n", path, err)
		}
	}
}
