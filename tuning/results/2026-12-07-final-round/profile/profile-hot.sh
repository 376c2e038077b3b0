#!/bin/bash
# $1 binary, $2 tag: perf of the server process for 6 s in a hot window, quotecast alone
# (the method of tuning/results/2026-11-24-direct-writes.md); run from anywhere in the repo, after the release builds; needs perf
here="$(cd "$(dirname "$0")" && pwd)"
cd "$(git -C "$here" rev-parse --show-toplevel)"
target/release/quotecast-bench compare --scenario hot --duration 12 --servers quotecast --no-probe --server-bin $1 --out /tmp/profhot > /tmp/profhot-$2.log 2>&1 &
sleep 8
pid=$(pgrep -f "serve --listen 127.0.0.1:0" | head -1)
perf record -F 999 -g -p $pid -o /tmp/profhot-$2.data -- sleep 6 > /dev/null 2>&1
wait
grep -E "^latency|^server    cpu" /tmp/profhot-$2.log
d=$(ls -td /tmp/profhot/hot-* | head -1)
python3 -c "
import json; q=json.load(open('$d/report.json'))['reports'][0]; t=q['throughput']; p=q['server_proc']; w=t['server_writes_per_s']
print('writes/s', round(w), 'cpu', round(p['cpu_pct']), 'us/write', round(p['cpu_pct']/100/w*1e6,2))"
# the files of this folder
perf report -i /tmp/profhot-$2.data --no-children --sort comm,dso -g none --stdio 2>/dev/null | grep "%" | head -14 > "$here/hot-by-thread.txt"
perf report -i /tmp/profhot-$2.data --no-children --comm shard-0-1 --sort dso,sym -g none --stdio 2>/dev/null | grep "%" | head -40 > "$here/hot-shard-symbols.txt"
perf report -i /tmp/profhot-$2.data --no-children --comm shard-0-1 --symbol-filter=_raw_spin_unlock_irqrestore -g caller,0.5,callee,function,percent --max-stack 3 --stdio 2>/dev/null | grep -v "^#" | grep -v "^$" | head -30 > "$here/hot-shard-unlock-callers.txt"
cp /tmp/profhot-$2.log "$here/hot-run.log"; cp $d/summary.md "$here/hot-run-summary.md"; cp $d/report.json "$here/hot-run-report.json"
