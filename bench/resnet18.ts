/**
 * torchvision's ResNet-18 (torchvision/models/resnet.py: BasicBlock, [2, 2, 2, 2], 1000 classes), written as a
 * PyTorch user would port it, with torchvision's module names (`layer1.0.conv1.weight`, `layer2.0.downsample.0`,
 * `fc`), so its state dict has torchvision's keys. The bench's `resnet18_eval` case runs it next to
 * `torchvision.models.resnet18()` (bench/torch_bench.py).
 */
import { nn, F, Tensor, child } from '../src';

export class BasicBlock extends nn.Module {
  @child conv1: nn.Conv2d;
  @child bn1: nn.BatchNorm2d;
  @child conv2: nn.Conv2d;
  @child bn2: nn.BatchNorm2d;
  @child downsample: nn.Sequential | null;

  constructor(inplanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = new nn.Conv2d(inplanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = new nn.Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample =
      stride !== 1 || inplanes !== planes
        ? new nn.Sequential(new nn.Conv2d(inplanes, planes, 1, { stride, bias: false }), new nn.BatchNorm2d(planes))
        : null;
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2(this.conv2(F.relu(this.bn1(this.conv1(x)))));
    return F.relu(out.add(this.downsample ? this.downsample(x) : x));
  }
}

export class ResNet18 extends nn.Module {
  @child conv1 = new nn.Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
  @child bn1 = new nn.BatchNorm2d(64);
  @child relu = new nn.ReLU();
  @child maxpool = new nn.MaxPool2d(3, { stride: 2, padding: 1 });
  @child layer1 = new nn.Sequential(new BasicBlock(64, 64), new BasicBlock(64, 64));
  @child layer2 = new nn.Sequential(new BasicBlock(64, 128, 2), new BasicBlock(128, 128));
  @child layer3 = new nn.Sequential(new BasicBlock(128, 256, 2), new BasicBlock(256, 256));
  @child layer4 = new nn.Sequential(new BasicBlock(256, 512, 2), new BasicBlock(512, 512));
  @child avgpool = new nn.AdaptiveAvgPool2d([1, 1]);
  @child fc = new nn.Linear(512, 1000);

  forward(x: Tensor): Tensor {
    const y = this.maxpool(this.relu(this.bn1(this.conv1(x))));
    const z = this.layer4(this.layer3(this.layer2(this.layer1(y))));
    return this.fc(this.avgpool(z).flatten(1));
  }
}
