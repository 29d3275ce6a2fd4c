"""Runs llama.cpp's own HTTP server (the C++ server inside the PyPI wheel `xllamacpp`) for one GGUF.

    python xllamacpp_serve.py '{"model": "/m.gguf", "host": "127.0.0.1", "port": 0, "slots": 4, "ctx_per_slot": 2048,
                                "threads": 2, "alias": "served-name", "gpu_layers": 0}'

Prints one JSON line to stdout when the server listens: {"event": "listening", "url": "http://127.0.0.1:PORT", ...}.
Stops gracefully (the server's own destructor drains its loop) on SIGTERM / SIGINT or when stdin closes, so a parent
that dies never leaves the server behind.
"""
import json
import os
import signal
import sys
import threading
import time


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: xllamacpp_serve.py CONFIG_JSON", file=sys.stderr)
        return 2
    cfg = json.loads(sys.argv[1])
    try:
        import xllamacpp as xlc
    except ImportError as e:
        print(f"xllamacpp is not installed in {sys.executable}: run `npm run setup` ({e})", file=sys.stderr)
        return 3
    model = cfg["model"]
    if not os.path.isfile(model):
        print(f"GGUF model not found at {model}", file=sys.stderr)
        return 4

    p = xlc.CommonParams()
    p.model.path = model
    p.hostnames = [cfg.get("host", "127.0.0.1")]
    p.port = int(cfg.get("port", 0))
    slots = int(cfg["slots"])
    p.n_parallel = slots
    # Each slot gets its own ctx_per_slot tokens of KV cache (llama.cpp splits n_ctx evenly over the slots).
    p.n_ctx = int(cfg["ctx_per_slot"]) * slots
    p.kv_unified = False
    p.cont_batching = True
    threads = int(cfg["threads"])
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.n_gpu_layers = int(cfg.get("gpu_layers", 0))
    p.use_jinja = True
    # The raw text, <think> included: the front splits reasoning itself, the same way for every runtime.
    p.reasoning_format = xlc.common_reasoning_format.COMMON_REASONING_FORMAT_NONE
    if cfg.get("alias"):
        p.model_alias = {cfg["alias"]}
    p.endpoint_metrics = True
    p.warmup = True

    started = time.time()
    server = xlc.Server(p)
    url = server.listening_address
    print(json.dumps({"event": "listening", "url": url, "slots": slots, "threads": threads,
                      "ctx_per_slot": int(cfg["ctx_per_slot"]), "load_seconds": round(time.time() - started, 3),
                      "pid": os.getpid(), "xllamacpp": getattr(xlc, "__version__", "?")}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.5):
        pass
    del server
    print(json.dumps({"event": "stopped"}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
