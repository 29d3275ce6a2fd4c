/**
 * Parallel slots of a llama.cpp server on a CPU: its server decodes all slots in one batch per step, so one server
 * with a few slots gets every core. The local teacher's default and the evaluation server's setting.
 */
export const DEFAULT_LLAMACPP_SLOTS = 4;
