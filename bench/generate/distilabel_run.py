"""The same generation through distilabel (PyPI), for bench:generate's comparison.

    python distilabel_run.py PROMPTS.jsonl BASE_URL CONCURRENCY N [MAX_TOKENS] [MODEL]

Runs a distilabel Pipeline (LoadDataFromDicts >> TextGeneration with OpenAILLM against BASE_URL), batches of
CONCURRENCY prompts, N generations each; prints one JSON line {"seconds", "prompts", "generations"}.
"""

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

from distilabel.models.llms import OpenAILLM  # noqa: E402
from distilabel.pipeline import Pipeline  # noqa: E402
from distilabel.steps import LoadDataFromDicts  # noqa: E402
from distilabel.steps.tasks import TextGeneration  # noqa: E402


def main() -> None:
    path, base_url, concurrency, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    max_tokens = int(sys.argv[5]) if len(sys.argv) > 5 else 512
    model = sys.argv[6] if len(sys.argv) > 6 else "latency-model"
    with open(path, encoding="utf-8") as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]
    with Pipeline(name="bench-generate") as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": p} for p in prompts], batch_size=concurrency)
        llm = OpenAILLM(
            base_url=base_url,
            model=model,
            api_key="not-needed",
            generation_kwargs={"max_new_tokens": max_tokens, "temperature": 0.6, "top_p": 0.95},
        )
        generate = TextGeneration(llm=llm, num_generations=n, group_generations=True, input_batch_size=concurrency)
        load >> generate
    started = time.time()
    distiset = pipeline.run(use_cache=False)
    seconds = time.time() - started
    rows = distiset["default"]["train"]
    generations = sum(len(r["generation"]) for r in rows)
    print(json.dumps({"seconds": seconds, "prompts": len(rows), "generations": generations}))


if __name__ == "__main__":
    main()
