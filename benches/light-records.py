"""The lighter 10M-grant data set of BENCHMARKS.md ("Scale"), as a records file.

Usage: python3 benches/light-records.py WORKSPACES MEMBERS FILE
(100000 50 for ten million grants: 16.1M records.) Each workspace has one owner, ten
sources and MEMBERS members with two grants each: a third hold two all-scope grants, the
others source_admin and source_read on two of the sources. Ids are short and repeat
across workspaces. Seeded, so the file is the same on every run.
"""
import json, random, sys
random.seed(7)
W=int(sys.argv[1]); M=int(sys.argv[2]); out=open(sys.argv[3],'w')
roles_all=["source_read","warehouse_read","warehouse_admin","source_admin"]
for w in range(W):
    ws=f"ws-{w:06d}"
    out.write(json.dumps({"workspace":{"id":ws,"products":["protocols"],"owners":[f"owner-{w}"]}})+"\n")
    for s in range(10):
        out.write(json.dumps({"resource":{"workspace":ws,"type":"source","id":f"src-{s}"}})+"\n")
    for m in range(M):
        u=f"user-{m:05d}"
        out.write(json.dumps({"member":{"workspace":ws,"user":u,"membership":"member"}})+"\n")
        if m%3==0:
            out.write(json.dumps({"grant":{"workspace":ws,"user":u,"role":random.choice(roles_all),"scope":"all"}})+"\n")
            out.write(json.dumps({"grant":{"workspace":ws,"user":u,"role":"protocols_read","scope":"all"}})+"\n")
        else:
            a,b=random.sample(range(10),2)
            out.write(json.dumps({"grant":{"workspace":ws,"user":u,"role":"source_admin","scope":{"type":"source","id":f"src-{a}"}}})+"\n")
            out.write(json.dumps({"grant":{"workspace":ws,"user":u,"role":"source_read","scope":{"type":"source","id":f"src-{b}"}}})+"\n")
