/** The bench's cases, in report order: shared by bench/run.ts (timing) and bench/update-readme.ts (README table). */
export type CaseId = 'matmul' | 'mlp_fwd_b256' | 'mlp_fwd_b1' | 'mlp_train_b256' | 'conv_fwd' | 'conv_train' | 'resnet18_eval' | 'resnet18_eval_b16';

export const CASES: { id: CaseId; title: string }[] = [
  { id: 'matmul', title: 'matmul 512x512' },
  { id: 'mlp_fwd_b256', title: 'MLP 784-256-10 forward, batch 256' },
  { id: 'mlp_fwd_b1', title: 'MLP 784-256-10 forward, batch 1' },
  { id: 'mlp_train_b256', title: 'MLP SGD train step, batch 256' },
  { id: 'conv_fwd', title: 'conv2d 3x3 [128,16,14,14] -> 32, pad 1, forward' },
  { id: 'conv_train', title: 'conv2d 3x3 [128,16,14,14] -> 32, pad 1, forward + backward' },
  { id: 'resnet18_eval', title: 'ResNet-18 (torchvision) eval forward, batch 2, 64x64' },
  { id: 'resnet18_eval_b16', title: 'ResNet-18 (torchvision) eval forward, batch 16, 64x64' },
];
