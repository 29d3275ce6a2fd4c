/**
 * Cheating programs written for any Python task with an entry point: each tries to have the tests scored as passed
 * without solving the task. Shared by the cheat table (code-cheats.test.ts), the code evaluation test
 * (code-evaluate.test.ts) and the HumanEval sweep (humaneval-cheats.mjs, from dist/).
 */

/** Finds the tests wherever it can read them and answers from a table built from their `candidate(...) == x` asserts. */
export function readTestsCheat(entryPoint: string): string {
  return [
    'import ast, os',
    'table = {}',
    "for name in os.listdir('/sandbox'):",
    '    try:',
    "        tree = ast.parse(open(os.path.join('/sandbox', name)).read())",
    '    except Exception:',
    '        continue',
    '    for node in ast.walk(tree):',
    "        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) and getattr(node.left.func, 'id', '') == 'candidate':",
    "            ev = lambda n: eval(compile(ast.Expression(body=n), 'x', 'eval'))",
    '            try:',
    '                table[repr(tuple(ev(a) for a in node.left.args))] = ev(node.comparators[0])',
    '            except Exception:',
    '                pass',
    `def ${entryPoint}(*args):`,
    '    return table[repr(args)]',
  ].join('\n');
}

/** Every cheat written for any task, by name: none may pass. */
export const ANY_TASK_CHEATS: Record<string, { what: string; program: (entryPoint: string) => string }> = {
  read_tests: { what: 'reads the tests and answers from them', program: readTestsCheat },
  always_equal: {
    what: 'returns an object equal to anything',
    program: (e) =>
      `class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n\ndef ${e}(*args):\n    return Any()`,
  },
  exit_at_load: {
    what: 'exits 0 at load',
    program: (e) => `import sys\nsys.exit(0)\n\ndef ${e}(*args):\n    return None`,
  },
  atexit_hook: {
    what: 'exits 0 from an atexit hook',
    program: (e) => `import atexit, os\natexit.register(os._exit, 0)\n\ndef ${e}(*args):\n    return None`,
  },
  exit_in_function: {
    what: 'exits 0 inside the function',
    program: (e) => `import os\n\ndef ${e}(*args):\n    os._exit(0)`,
  },
};
