#!/bin/bash
# $1 binary: light, quotecast alone; per-thread CPU (schedstat, 5 s) and the shard thread's system calls (strace -c, 3 s)
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
target/release/quotecast-bench compare --scenario light --duration 12 --servers quotecast --no-probe --server-bin $1 --out /tmp/sys > /tmp/sys-last.log 2>&1 &
sleep 7
pid=$(pgrep -f "serve --listen 127.0.0.1:0" | head -1)
snap() { for t in /proc/$pid/task/*; do echo $(basename $t) $(cat $t/comm) $(cat $t/schedstat) $(grep ctxt $t/status | awk '{print $2}'); done; }
snap > /tmp/thr.a; sleep 5; snap > /tmp/thr.b
join /tmp/thr.a /tmp/thr.b | awk '{printf "%-14s cpu %5.1f%%  vol/s %6d invol/s %6d\n",$2,($9-$3)/5e7,($12-$6)/5,($13-$7)/5}' | grep -v " 0.0%.*vol/s      0"
tid=$(grep -l shard-0 /proc/$pid/task/*/comm | head -1 | xargs dirname | xargs basename)
timeout 3 strace -c -p $tid 2>&1 | grep -E "calls|io_uring|membarrier|recvfrom|total|futex|clock"
wait
grep -E "^latency|leading|^server    cpu" /tmp/sys-last.log
