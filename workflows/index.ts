export { distillationWorkflow } from './distillation';
export { generationWorkflow } from './generation';
