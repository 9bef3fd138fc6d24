// convert-mobilenet-v2.mjs — writes mobilenet_v2_b10.safetensors, DCR's
// default backbone: the ImageNet part (Conv1 … block_10) of the Keras
// MobileNetV2 bundled in nsfwjs, dequantized to float32, in libdcr's layouts.
//
//   npm ci && node convert-mobilenet-v2.mjs [OUTPUT]
//
// Every assumption the metadata states (ReLU6, eps, the asymmetric stride-2
// padding, no biases) is checked against the Keras topology, so a different
// source model fails here instead of producing wrong weights silently.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadSource, writeSafetensors, LAST_LAYER, TAPS, SOURCE_PACKAGE, SOURCE_DIR, IMAGE_SIZE,
} from './mobilenet-v2-common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const output = process.argv[2] ?? path.join(here, 'mobilenet_v2_b10.safetensors');

function fail (layer, what) {
  throw new Error(`${layer.name} (${layer.class_name}): ${what}`);
}

function same (a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

const src = loadSource();
const keep = [];
for (const l of src.layers) {
  keep.push(l);
  if (l.name === LAST_LAYER)
    break;
}
if (keep[keep.length - 1].name !== LAST_LAYER)
  throw new Error(`no layer ${LAST_LAYER}`);

const tensors = [];
function take (name, keyname) {
  const w = src.weights.get(keyname);
  if (!w)
    throw new Error(`no weight ${keyname} in the manifest`);
  return w;
}

// Keras kernels are [KH, KW, Cin, Cout] (depthwise: [KH, KW, C, 1]); libdcr
// wants [Cout, KH, KW, Cin/groups] (engine/dcr-ops.h).
function convToOhwi (w) {
  const [kh, kw, cin, cout] = w.shape;
  const out = new Float32Array(w.data.length);
  for (let o = 0; o < cout; o++)
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let i = 0; i < cin; i++)
          out[((o * kh + y) * kw + x) * cin + i] = w.data[((y * kw + x) * cin + i) * cout + o];
  return { shape: [cout, kh, kw, cin], data: out };
}

function depthwiseToOhwi (w) {
  const [kh, kw, c, mult] = w.shape;
  if (mult !== 1)
    throw new Error(`depth multiplier ${mult} is not supported`);
  const out = new Float32Array(w.data.length);
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        out[(ch * kh + y) * kw + x] = w.data[(y * kw + x) * c + ch];
  return { shape: [c, kh, kw, 1], data: out };
}

const blocks = [];
let block = null;
let padded = null; /* the ZeroPadding2D feeding the next layer, if any */
let channels = 3;
let eps = null;
for (const l of keep) {
  const c = l.config;
  const m = /^(block_\d+|expanded_conv|Conv1|bn_Conv1)/.exec(l.name);
  const bname = m && m[1].startsWith('block_') ? m[1] : m && m[1] === 'expanded_conv' ? 'block_0' : 'stem';
  if (!block || block.name !== bname) {
    block = { name: bname, keras_prefix: bname === 'block_0' ? 'expanded_conv' : bname === 'stem' ? 'Conv1' : bname, in_channels: channels,
              expand: 0, stride: 1, out_channels: 0, residual: false };
    blocks.push(block);
  }
  switch (l.class_name) {
    case 'InputLayer':
      if (!same(c.batch_input_shape, [null, IMAGE_SIZE, IMAGE_SIZE, 3]))
        fail(l, `input shape ${JSON.stringify(c.batch_input_shape)}`);
      break;
    case 'ZeroPadding2D':
      if (!same(c.padding, [[0, 1], [0, 1]]))
        fail(l, `padding ${JSON.stringify(c.padding)}`);
      padded = l.name;
      break;
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const dw = l.class_name === 'DepthwiseConv2D';
      if (c.use_bias || !same(c.dilation_rate, [1, 1]) || c.data_format !== 'channels_last')
        fail(l, 'bias, dilation or data format not as expected');
      const k = c.kernel_size;
      const s = c.strides;
      const inbound = l.inbound_nodes[0][0][0];
      if (s[0] === 2) {
        if (!same(s, [2, 2]) || !same(k, [3, 3]) || c.padding !== 'valid' || inbound !== padded)
          fail(l, 'stride 2 without the (0,1),(0,1) zero padding before it');
        block.stride = 2;
      } else if (!same(s, [1, 1]) || !(c.padding === 'same' || (same(k, [1, 1]) && c.padding === 'valid')))
        fail(l, `stride ${s} padding ${c.padding}`);
      padded = null;
      const w = take(l.name, `${l.name}/${dw ? 'depthwise_kernel' : 'kernel'}`);
      if (!same(w.shape.slice(0, 2), k))
        fail(l, `kernel ${JSON.stringify(w.shape)}`);
      if (w.shape[2] !== channels)
        fail(l, `kernel ${JSON.stringify(w.shape)} on ${channels} input channels`);
      const t = dw ? depthwiseToOhwi(w) : convToOhwi(w);
      tensors.push([`${l.name}.weight`, { dtype: 'F32', shape: t.shape, data: t.data }]);
      channels = t.shape[0];
      if (l.name.endsWith('_expand'))
        block.expand = channels;
      break;
    }
    case 'BatchNormalization': {
      if (c.axis !== -1 && c.axis !== 3)
        fail(l, `axis ${c.axis}`);
      if (!c.center || !c.scale)
        fail(l, 'center/scale off');
      if (eps !== null && eps !== c.epsilon)
        fail(l, `epsilon ${c.epsilon} differs from ${eps}`);
      eps = c.epsilon;
      for (const [keras, torch] of [['gamma', 'weight'], ['beta', 'bias'],
                                    ['moving_mean', 'running_mean'], ['moving_variance', 'running_var']]) {
        const w = take(l.name, `${l.name}/${keras}`);
        if (!same(w.shape, [channels]))
          fail(l, `${keras} shape ${JSON.stringify(w.shape)} on ${channels} channels`);
        tensors.push([`${l.name}.${torch}`, { dtype: 'F32', shape: w.shape, data: w.data }]);
      }
      if (/project_BN$/.test(l.name) || l.name === 'bn_Conv1')
        block.out_channels = channels;
      break;
    }
    case 'ReLU':
      if (c.max_value !== 6 || (c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0)
        fail(l, 'not a ReLU6');
      break;
    case 'Add': {
      const ins = l.inbound_nodes[0].map((n) => n[0]);
      if (ins.length !== 2)
        fail(l, 'expected two inputs');
      block.residual = true;
      break;
    }
    default:
      fail(l, 'layer type not handled by DCR\'s MobileNetV2');
  }
}
if (eps === null)
  throw new Error('no BatchNormalization layers');
for (const b of blocks)
  if (b.name !== 'stem' && b.residual !== (b.stride === 1 && b.in_channels === b.out_channels))
    throw new Error(`${b.name}: residual ${b.residual} but stride ${b.stride}, ${b.in_channels}→${b.out_channels}`);
/* Every weight the kept layers own was used, and none of the fine-tuned ones. */
const used = new Set(tensors.map(([n]) => n.replace(/\.(weight|bias|running_mean|running_var)$/, '')));
for (const l of keep)
  if (['Conv2D', 'DepthwiseConv2D', 'BatchNormalization'].includes(l.class_name) && !used.has(l.name))
    throw new Error(`${l.name}: weights not converted`);

const params = tensors.reduce((a, [, t]) => a + t.data.length, 0);
const metadata = {
  format: 'dcr-mobilenet-v2-b10',
  format_version: '1',
  architecture: 'MobileNetV2 alpha 1.0 (Keras Applications), layers Conv1 … block_10_project_BN of 162, NHWC',
  input: `RGB ${IMAGE_SIZE}x${IMAGE_SIZE}, float32 x/127.5 - 1 (keras mobilenet_v2.preprocess_input)`,
  layout: 'conv weights [Cout, KH, KW, Cin/groups] (libdcr engine/dcr-ops.h); depthwise [C, 3, 3, 1], groups = C; ' +
          'no conv biases; BatchNorm <layer>.weight (gamma), .bias (beta), .running_mean, .running_var (inference form)',
  bn_eps: String(eps),
  activation: 'ReLU6 (min(max(x, 0), 6)) after bn_Conv1 and after every *_expand_BN and *_depthwise_BN; ' +
              'none after *_project_BN; residual add after project_BN where a block has one',
  padding: 'stride-2 3x3 convs (Conv1, block_1/3/6 depthwise): zero pad top 0, bottom 1, left 0, right 1, then no padding ' +
           '(Keras ZeroPadding2D ((0,1),(0,1)) + valid); stride-1 3x3 depthwise: 1 on every side; 1x1: none',
  blocks: JSON.stringify(blocks.map(({ name, keras_prefix, in_channels, expand, stride, out_channels, residual }) =>
    ({ name, keras_prefix, in_channels, expand, stride, out_channels, residual }))),
  taps: JSON.stringify(Object.fromEntries(TAPS)),
  output_shape: '[14, 14, 96] at 224x224 input',
  parameters: String(params),
  source: `npm ${SOURCE_PACKAGE}@${src.version}, ${SOURCE_DIR}/model.min.js + group1-shard1of1.min.js (Keras ${src.topology.keras_version})`,
  source_sha256: JSON.stringify(Object.fromEntries(src.files.map((f) => [f.name, f.sha256]))),
  source_quantization: 'uint8 per tensor in the source (tfjs weight manifest: value = q * scale + min), dequantized to float32 here',
  provenance: 'ImageNet weights of Keras Applications MobileNetV2; nsfw_model (github.com/GantMan/nsfw_model) fine-tuned ' +
              'only from block_11_expand on (trainable: false on every layer kept here), so these are unchanged apart from the 8-bit quantization',
  license: `MIT (${SOURCE_PACKAGE} © 2019 Infinite Red, Inc.; nsfw_model © 2020 The nsfw_model Developers); see data/models/README.md`,
  converter: 'data/models/convert-mobilenet-v2.mjs',
};

const bytes = writeSafetensors(output, tensors, metadata);
console.log(`${output}: ${tensors.length} tensors, ${params} parameters, ${bytes} bytes, bn eps ${eps}`);
for (const b of blocks)
  console.log(`  ${b.name.padEnd(9)} ${String(b.in_channels).padStart(3)} → ${String(b.expand || '-').padStart(3)} → ` +
              `${String(b.out_channels).padStart(3)}  stride ${b.stride}${b.residual ? '  +residual' : ''}`);
