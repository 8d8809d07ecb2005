#!/usr/bin/python3
"""slowfs: a read-only pass-through FUSE file system whose reads cost what a
disk's do, for benchmarks on machines whose virtual disk answers a random
read in 0.1 ms.

Every read the kernel asks of it (a page-cache miss: a demand read, or
readahead) waits for one of DEPTH slots (the disk's queue depth), then
LATENCY_MS (the access time of a spinning disk or a cloud volume) unless it
starts where the previous read of the same file ended (sequential), then its
turn on a bus that moves BYTES_PER_S, and only then is read from BACKING.
A page-cache hit never reaches it. The page cache is kept across opens
(kernel_cache), as on a local file system.

Every 100 ms it writes STATS (JSON, atomically): reads and bytes per
requesting process (FUSE names the thread; its thread group is counted), and in all.

usage: slowfs.py BACKING MOUNTPOINT LATENCY_MS BYTES_PER_S DEPTH STATS
(stays in the foreground; SIGTERM or fusermount -u ends it)
"""
import errno
import json
import os
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations, fuse_get_context


class Disk:
    """Access time per read, DEPTH reads at once, one bus for the bytes."""

    def __init__(self, latency_s, bytes_per_s, depth):
        self.latency_s = latency_s
        self.bytes_per_s = bytes_per_s
        self.slots = threading.Semaphore(depth)
        self.bus = threading.Lock()
        self.bus_free_at = 0.0
        self.ends = {}

    def read(self, key, fd, size, offset):
        with self.slots:
            # A read that starts where the last one of this file ended is
            # sequential: the head is there already, no access time.
            with self.bus:
                sequential = self.ends.get(key) == offset
                self.ends[key] = offset + size
            if not sequential:
                time.sleep(self.latency_s)
            with self.bus:
                now = time.monotonic()
                start = max(now, self.bus_free_at)
                self.bus_free_at = start + size / self.bytes_per_s
                wait = self.bus_free_at - now
            if wait > 0:
                time.sleep(wait)
            return os.pread(fd, size, offset)


class SlowFs(Operations):
    def __init__(self, backing, disk, stats_path):
        self.backing = os.path.realpath(backing)
        self.disk = disk
        self.stats_path = stats_path
        self.mutex = threading.Lock()
        self.by_pid = {}
        self.total = [0, 0]
        self.tgids = {}

    def _path(self, path):
        return os.path.join(self.backing, path.lstrip('/'))

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        keys = ('st_mode', 'st_ino', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_atime', 'st_mtime', 'st_ctime', 'st_blocks')
        out = {k: getattr(st, k) for k in keys}
        out['st_mtime'] = st.st_mtime_ns / 1e9
        return out

    def readdir(self, path, fh):
        return ['.', '..'] + os.listdir(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        return {k: getattr(st, k) for k in ('f_bsize', 'f_frsize', 'f_blocks', 'f_bfree', 'f_bavail', 'f_files', 'f_ffree', 'f_namemax')}

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise FuseOSError(errno.EROFS)
        return os.open(self._path(path), os.O_RDONLY)

    def read(self, path, size, offset, fh):
        data = self.disk.read(path, fh, size, offset)
        pid = self._process(fuse_get_context()[2])
        with self.mutex:
            entry = self.by_pid.setdefault(pid, [0, 0])
            entry[0] += 1
            entry[1] += len(data)
            self.total[0] += 1
            self.total[1] += len(data)
        return data

    def _process(self, tid):
        # FUSE names the thread that asked; count it for its process.
        tgid = self.tgids.get(tid)
        if tgid is None:
            try:
                with open('/proc/%d/status' % tid) as f:
                    tgid = next(int(l.split()[1]) for l in f if l.startswith('Tgid:'))
            except (OSError, StopIteration, ValueError):
                tgid = tid
            self.tgids[tid] = tgid
        return tgid

    def release(self, path, fh):
        os.close(fh)
        return 0

    def dump(self):
        while True:
            time.sleep(0.1)
            with self.mutex:
                snapshot = {'reads': self.total[0], 'bytes': self.total[1],
                            'byPid': {str(p): {'reads': r, 'bytes': b} for p, (r, b) in self.by_pid.items()}}
            tmp = self.stats_path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(snapshot, f)
            os.replace(tmp, self.stats_path)


def main():
    backing, mountpoint, latency_ms, bytes_per_s, depth, stats = sys.argv[1:7]
    fs = SlowFs(backing, Disk(float(latency_ms) / 1000, float(bytes_per_s), int(depth)), stats)
    threading.Thread(target=fs.dump, daemon=True).start()
    FUSE(fs, mountpoint, foreground=True, nothreads=False, ro=True, kernel_cache=True, use_ino=True,
         attr_timeout=3600, entry_timeout=3600, max_read=131072, fsname='slowfs')


if __name__ == '__main__':
    main()
