/**
 * torchvision.models.resnet18, ported as a PyTorch user would: the same module tree and attribute names
 * (conv1, bn1, layer1..layer4 of BasicBlocks with `downsample`, fc), so torchvision's state dict loads
 * strictly. test/nn/resnet18.test.ts checks one training step of it against PyTorch (every parameter's
 * gradient, on every device); the bench's `resnet18_eval` case runs it beside `torchvision.models.resnet18()`.
 */
import { nn, F, Tensor, child } from '../../src';

function conv3x3(inPlanes: number, outPlanes: number, stride = 1): nn.Conv2d {
  return new nn.Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false });
}

function conv1x1(inPlanes: number, outPlanes: number, stride = 1): nn.Conv2d {
  return new nn.Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

export class BasicBlock extends nn.Module {
  @child conv1: nn.Conv2d;
  @child bn1: nn.BatchNorm2d;
  @child conv2: nn.Conv2d;
  @child bn2: nn.BatchNorm2d;
  @child downsample: nn.Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1, downsample: nn.Sequential | null = null) {
    super();
    this.conv1 = conv3x3(inPlanes, planes, stride);
    this.bn1 = new nn.BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new nn.BatchNorm2d(planes);
    this.downsample = downsample;
  }

  forward(x: Tensor): Tensor {
    const identity = this.downsample ? this.downsample(x) : x;
    const out = this.bn2(this.conv2(F.relu(this.bn1(this.conv1(x)))));
    return F.relu(out.add(identity));
  }
}

export class ResNet18 extends nn.Module {
  @child conv1 = new nn.Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
  @child bn1 = new nn.BatchNorm2d(64);
  @child relu = new nn.ReLU();
  @child maxpool = new nn.MaxPool2d(3, { stride: 2, padding: 1 });
  @child layer1: nn.Sequential;
  @child layer2: nn.Sequential;
  @child layer3: nn.Sequential;
  @child layer4: nn.Sequential;
  @child avgpool = new nn.AdaptiveAvgPool2d([1, 1]);
  @child fc: nn.Linear;
  private inPlanes = 64;

  constructor(numClasses = 1000) {
    super();
    this.layer1 = this.makeLayer(64, 2);
    this.layer2 = this.makeLayer(128, 2, 2);
    this.layer3 = this.makeLayer(256, 2, 2);
    this.layer4 = this.makeLayer(512, 2, 2);
    this.fc = new nn.Linear(512, numClasses);
  }

  private makeLayer(planes: number, blocks: number, stride = 1): nn.Sequential {
    const downsample =
      stride !== 1 || this.inPlanes !== planes ? new nn.Sequential(conv1x1(this.inPlanes, planes, stride), new nn.BatchNorm2d(planes)) : null;
    const layers: nn.Module[] = [new BasicBlock(this.inPlanes, planes, stride, downsample)];
    this.inPlanes = planes;
    for (let i = 1; i < blocks; i++) layers.push(new BasicBlock(this.inPlanes, planes));
    return new nn.Sequential(...layers);
  }

  forward(x: Tensor): Tensor {
    x = this.maxpool(this.relu(this.bn1(this.conv1(x))));
    x = this.layer4(this.layer3(this.layer2(this.layer1(x))));
    return this.fc(this.avgpool(x).flatten(1));
  }
}
