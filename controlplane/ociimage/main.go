// Command ociimage writes a single-layer OCI image archive from files on this machine, without
// a container engine or a base image: the node's pause and test images, and the host's image
// (scripts/image.sh). The archive is an OCI image layout in a tar file, the format
// `ctr images import` and most registries' tools read.
//
//	ociimage --name docker.io/library/wasm-operator:dev --out image.tar \
//	  --add /path/to/wasm-operator:/usr/local/bin/wasm-operator \
//	  --dir /tmp:1777 --symlink /bin/sh:busybox \
//	  --entrypoint '["/usr/local/bin/wasm-operator"]' --cmd '["cluster"]' --user 65532:65532
//
// The layer is reproducible: entries sorted, owned by root (or --owner), timestamps zero.
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	name, out, user, workdir, entrypoint, cmd string
	add, dirs, symlinks, env, owners          listFlag
}

func run(args []string) error {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.name, "name", "", "the image's full reference, e.g. docker.io/library/wasm-operator:dev (required)")
	fs.StringVar(&o.out, "out", "", "the archive to write (required)")
	fs.Var(&o.add, "add", "SRC:DEST[:MODE] a file of this machine at DEST in the image (mode in octal; default SRC's)")
	fs.Var(&o.dirs, "dir", "DEST:MODE a directory (parents of files are added with mode 0755)")
	fs.Var(&o.symlinks, "symlink", "DEST:TARGET a symbolic link")
	fs.Var(&o.owners, "owner", "DEST:UID:GID the owner of an entry (default root)")
	fs.Var(&o.env, "env", "NAME=VALUE in the image's environment (repeatable)")
	fs.StringVar(&o.user, "user", "", "the user the image runs as, UID:GID")
	fs.StringVar(&o.workdir, "workdir", "/", "the working directory")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "the entrypoint, a JSON array of strings")
	fs.StringVar(&o.cmd, "cmd", "", "the default arguments, a JSON array of strings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.name == "" || o.out == "" {
		return errors.New("--name and --out are required")
	}
	entries, err := o.entries()
	if err != nil {
		return err
	}
	config := imageConfig{User: o.user, WorkingDir: o.workdir, Env: o.env}
	if config.Entrypoint, err = jsonList("--entrypoint", o.entrypoint); err != nil {
		return err
	}
	if config.Cmd, err = jsonList("--cmd", o.cmd); err != nil {
		return err
	}
	return writeArchive(o.out, o.name, entries, config)
}

// entry is one file, directory or link of the layer.
type entry struct {
	path     string // absolute, cleaned
	kind     byte   // tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	mode     int64
	source   string // for files
	target   string // for links
	uid, gid int
}

func (o *options) entries() ([]*entry, error) {
	byPath := map[string]*entry{}
	put := func(e *entry) error {
		e.path = path.Clean("/" + e.path)
		if old, ok := byPath[e.path]; ok && !(old.kind == tar.TypeDir && e.kind == tar.TypeDir) {
			return fmt.Errorf("%s is added twice", e.path)
		}
		byPath[e.path] = e
		return nil
	}
	for _, spec := range o.add {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("--add %q: want SRC:DEST[:MODE]", spec)
		}
		info, err := os.Stat(parts[0])
		if err != nil {
			return nil, err
		}
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("--add %q: %s is not a regular file", spec, parts[0])
		}
		mode := int64(info.Mode().Perm())
		if len(parts) == 3 {
			if mode, err = strconv.ParseInt(parts[2], 8, 32); err != nil {
				return nil, fmt.Errorf("--add %q: mode: %w", spec, err)
			}
		}
		if err := put(&entry{path: parts[1], kind: tar.TypeReg, mode: mode, source: parts[0]}); err != nil {
			return nil, err
		}
	}
	for _, spec := range o.dirs {
		dest, modeText, ok := strings.Cut(spec, ":")
		mode, err := strconv.ParseInt(modeText, 8, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("--dir %q: want DEST:MODE (octal)", spec)
		}
		if err := put(&entry{path: dest, kind: tar.TypeDir, mode: mode}); err != nil {
			return nil, err
		}
	}
	for _, spec := range o.symlinks {
		dest, target, ok := strings.Cut(spec, ":")
		if !ok || target == "" {
			return nil, fmt.Errorf("--symlink %q: want DEST:TARGET", spec)
		}
		if err := put(&entry{path: dest, kind: tar.TypeSymlink, mode: 0o777, target: target}); err != nil {
			return nil, err
		}
	}
	// Parents that were not named are plain directories.
	for _, e := range byPath {
		for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = &entry{path: dir, kind: tar.TypeDir, mode: 0o755}
			}
		}
	}
	for _, spec := range o.owners {
		parts := strings.Split(spec, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--owner %q: want DEST:UID:GID", spec)
		}
		e, ok := byPath[path.Clean("/"+parts[0])]
		if !ok {
			return nil, fmt.Errorf("--owner %q: no such entry", spec)
		}
		uid, err1 := strconv.Atoi(parts[1])
		gid, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--owner %q: UID and GID are numbers", spec)
		}
		e.uid, e.gid = uid, gid
	}
	entries := make([]*entry, 0, len(byPath))
	for _, e := range byPath {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	return entries, nil
}

func jsonList(flagName, text string) ([]string, error) {
	if text == "" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		return nil, fmt.Errorf("%s: a JSON array of strings: %w", flagName, err)
	}
	return list, nil
}

// imageConfig is the `config` object of an OCI image configuration.
type imageConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    map[string]string `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// writeArchive writes the layer to a temporary file (hashing it on the way), then the archive:
// oci-layout, index.json and the three blobs.
func writeArchive(out, name string, entries []*entry, config imageConfig) error {
	layer, err := os.CreateTemp("", "ociimage-layer-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(layer.Name())
	defer layer.Close()
	hash := sha256.New()
	if err := writeLayer(io.MultiWriter(layer, hash), entries); err != nil {
		return err
	}
	layerSize, err := layer.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	layerDigest := "sha256:" + hex.EncodeToString(hash.Sum(nil))

	configBlob, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config":       config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		"history":      []map[string]string{{"created": "1970-01-01T00:00:00Z", "created_by": "controlplane/ociimage"}},
	})
	if err != nil {
		return err
	}
	manifestBlob, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        describe("application/vnd.oci.image.config.v1+json", configBlob),
		"layers":        []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: layerSize}},
	})
	if err != nil {
		return err
	}
	manifest := describe("application/vnd.oci.image.manifest.v1+json", manifestBlob)
	manifest.Platform = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
	manifest.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tagOf(name),
	}
	indexBlob, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifest},
	})
	if err != nil {
		return err
	}

	tmp := out + ".tmp"
	file, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	archive := tar.NewWriter(file)
	small := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexBlob},
		{blobPath(describe("", configBlob).Digest), configBlob},
		{blobPath(manifest.Digest), manifestBlob},
	}
	for _, f := range small {
		if err := addBytes(archive, f.name, f.data); err != nil {
			return err
		}
	}
	if _, err := layer.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := archive.WriteHeader(&tar.Header{Name: blobPath(layerDigest), Mode: 0o644, Size: layerSize, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(archive, layer); err != nil {
		return err
	}
	if err := archive.Close(); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func writeLayer(w io.Writer, entries []*entry) error {
	layer := tar.NewWriter(w)
	for _, e := range entries {
		header := &tar.Header{
			Name: strings.TrimPrefix(e.path, "/"), Typeflag: e.kind, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Linkname: e.target, Format: tar.FormatPAX,
		}
		if e.kind == tar.TypeDir {
			header.Name += "/"
		}
		if e.kind != tar.TypeReg {
			if err := layer.WriteHeader(header); err != nil {
				return err
			}
			continue
		}
		if err := addFile(layer, header, e.source); err != nil {
			return err
		}
	}
	return layer.Close()
}

func addFile(layer *tar.Writer, header *tar.Header, source string) error {
	f, err := os.Open(source)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	header.Size = info.Size()
	if err := layer.WriteHeader(header); err != nil {
		return err
	}
	if _, err := io.Copy(layer, f); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}

func addBytes(archive *tar.Writer, name string, data []byte) error {
	if err := archive.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := archive.Write(data)
	return err
}

func describe(mediaType string, blob []byte) descriptor {
	sum := sha256.Sum256(blob)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(blob))}
}

func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// tagOf returns the tag of a reference (after the last colon that follows the last slash).
func tagOf(reference string) string {
	lastSlash := strings.LastIndex(reference, "/")
	if colon := strings.LastIndex(reference, ":"); colon > lastSlash {
		return reference[colon+1:]
	}
	return "latest"
}
