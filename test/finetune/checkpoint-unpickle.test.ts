import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pythonBin, trainerScript } from '../../infra/paths';

/**
 * A checkpoint directory is a file on disk that anyone with write access to the artifact root can plant; the trainer
 * resumes from it. Loading its state.pt must never unpickle arbitrary objects (that runs their code): a state.pt that
 * builds a file when unpickled is refused and the file never appears, while a checkpoint the trainer wrote itself
 * (tensors, RNG states, plain containers) still loads.
 */
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-unpickle-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function python(code: string): { status: number | null; output: string } {
  const r = spawnSync(pythonBin(), ['-c', code], {
    cwd: path.dirname(trainerScript('train_tiny.py')),
    env: { ...process.env, PYTHONPATH: path.dirname(trainerScript('train_tiny.py')) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

test('a planted state.pt that runs code when unpickled is refused by load_checkpoint, and its code never runs', () => {
  const ckpt = path.join(dir, 'evil', 'step-000008');
  const marker = path.join(dir, 'evil', 'PWNED');
  const planted = python(`
import json, os, torch
class Payload:
    def __reduce__(self):
        return (open, (${JSON.stringify(marker)}, "w"))
os.makedirs(${JSON.stringify(ckpt)}, exist_ok=True)
torch.save({"model": {}, "rng": Payload()}, os.path.join(${JSON.stringify(ckpt)}, "state.pt"))
with open(os.path.join(${JSON.stringify(ckpt)}, "meta.json"), "w") as f:
    json.dump({"step": 8}, f)
`);
  expect(planted.output).not.toMatch(/Traceback/);
  expect(planted.status).toBe(0);
  expect(existsSync(marker)).toBe(false);

  const loaded = python(`
import sys, train_tiny
try:
    train_tiny.load_checkpoint(${JSON.stringify(ckpt)})
except Exception as e:
    print("REFUSED", type(e).__name__)
    sys.exit(3)
print("LOADED")
`);
  expect(existsSync(marker)).toBe(false);
  expect(loaded.output).toMatch(/REFUSED UnpicklingError/);
  expect(loaded.status).toBe(3);
});

test('control: a checkpoint the trainer saved itself (weights, RNG states, curves) loads with weights only', () => {
  const root = path.join(dir, 'own');
  const r = python(`
import random, torch, train_tiny
state = {"model": torch.nn.Linear(4, 2).state_dict(), "rng": train_tiny.rng_state(), "loss_curve": [1.5, 1.25], "tokens": 64}
p = train_tiny.save_checkpoint(${JSON.stringify(root)}, 8, state, {"step": 8}, keep=2)
st, meta = train_tiny.load_checkpoint(p)
assert meta["step"] == 8 and st["loss_curve"] == [1.5, 1.25] and torch.equal(st["model"]["weight"], state["model"]["weight"])
train_tiny.set_rng_state(st["rng"])
print("LOADED", sorted(st))
`);
  expect(r.output).toMatch(/LOADED \['loss_curve', 'model', 'rng', 'tokens'\]/);
  expect(r.status).toBe(0);
});
