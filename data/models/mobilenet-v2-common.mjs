// mobilenet-v2-common.mjs — what the converter and the tfjs reference share:
// reading nsfwjs's bundled Keras MobileNetV2 (topology + uint8-quantized
// weights), a small safetensors writer, and the synthetic golden inputs
// (integer formulas, so C and Python can regenerate them bit for bit).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const SOURCE_PACKAGE = 'nsfwjs';
export const SOURCE_DIR = 'dist/models/mobilenet_v2';
export const SOURCE_FILES = ['model.min.js', 'group1-shard1of1.min.js'];
// Blocks up to block_10 kept their ImageNet weights: the nsfw_model
// fine-tune (training/mobilenetv2_transfer/train_fine_tune.py) unfroze the
// network from block_11_expand on, and the shipped topology still says so
// (trainable: false on every layer before it) — checked in loadSource().
export const LAST_LAYER = 'block_10_project_BN';
export const FIRST_FINE_TUNED = 'block_11_expand';
// The outputs of blocks 2, 5, 8 and 10 (the residual sum where a block has one).
export const TAPS = [
  ['block_2', 'block_2_add'],
  ['block_5', 'block_5_add'],
  ['block_8', 'block_8_add'],
  ['block_10', 'block_10_project_BN'],
];

export const IMAGE_SIZE = 224;
export const NUM_SYNTHETIC = 4;

function sha256 (buf) {
  return createHash('sha256').update(buf).digest('hex');
}

export function packageDir () {
  return path.join(here, 'node_modules', SOURCE_PACKAGE);
}

export function loadSource () {
  const dir = packageDir();
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const files = SOURCE_FILES.map((f) => {
    const p = path.join(dir, SOURCE_DIR, f);
    return { name: `${SOURCE_DIR}/${f}`, path: p, sha256: sha256(readFileSync(p)) };
  });
  // Both files are browserify UMD bundles: require() gives the model JSON and
  // the shard as a base64 string.
  const model = require(files[0].path);
  const shardB64 = require(files[1].path);
  if (!model.modelTopology || !Array.isArray(model.weightsManifest))
    throw new Error(`${files[0].name}: no modelTopology / weightsManifest`);
  if (typeof shardB64 !== 'string')
    throw new Error(`${files[1].name}: expected a base64 string`);
  const weightData = new Uint8Array(Buffer.from(shardB64, 'base64'));

  const layers = model.modelTopology.model_config.config.layers;
  const idx = layers.findIndex((l) => l.name === FIRST_FINE_TUNED);
  if (idx < 0)
    throw new Error(`no layer ${FIRST_FINE_TUNED} in the topology`);
  layers.forEach((l, i) => {
    const frozen = l.config.trainable === false || l.class_name === 'InputLayer';
    if (i < idx && !frozen)
      throw new Error(`${l.name} is trainable: the ImageNet part is not what we expect`);
  });

  // tfjs weight manifest: tensors back to back in manifest order; uint8
  // quantization dequantizes as q * scale + min (tfjs-core io_utils).
  const weights = new Map();
  const weightSpecs = [];
  let offset = 0;
  for (const group of model.weightsManifest) {
    if (group.paths.length !== 1 || group.paths[0] !== 'group1-shard1of1')
      throw new Error(`unexpected weight shards ${JSON.stringify(group.paths)}`);
    for (const w of group.weights) {
      weightSpecs.push(w);
      const n = w.shape.reduce((a, b) => a * b, 1);
      const q = w.quantization;
      if (w.dtype !== 'float32' || !q || q.dtype !== 'uint8')
        throw new Error(`${w.name}: expected uint8-quantized float32, got ${JSON.stringify(w)}`);
      if (offset + n > weightData.length)
        throw new Error(`${w.name}: runs past the end of the shard`);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++)
        out[i] = weightData[offset + i] * q.scale + q.min;
      weights.set(w.name, { shape: w.shape, data: out, quantization: q });
      offset += n;
    }
  }
  if (offset !== weightData.length)
    throw new Error(`shard has ${weightData.length} bytes, manifest covers ${offset}`);

  return {
    version: pkg.version,
    license: pkg.license,
    files,
    topology: model.modelTopology,
    layers,
    weightSpecs,
    weightData,
    weights,
  };
}

// Deterministic 224×224×3 uint8 test images, HWC. Integer arithmetic only.
function lowbias32 (x) {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

export function syntheticPixel (k, y, x, c) {
  switch (k) {
    case 0: /* gradients */
      return c === 0 ? x : c === 1 ? y : (x + y) >> 1;
    case 1: /* white noise */
      return lowbias32((((y * IMAGE_SIZE) + x) * 3 + c) >>> 0) & 255;
    case 2: /* 16-pixel checkerboard, a different pair of colours per channel */
      return ((x >> 4) ^ (y >> 4)) & 1 ? 230 - 40 * c : 20 + 60 * c;
    case 3: /* rings */
      return ((x * x + 2 * y * y + 5000 * c) >> 6) & 255;
    default:
      throw new Error(`no synthetic image ${k}`);
  }
}

export const SYNTHETIC_DOC =
  'uint8 HWC 224x224x3, image k at (y, x, c): ' +
  'k=0 c==0 ? x : c==1 ? y : (x+y)>>1; ' +
  'k=1 lowbias32((y*224+x)*3+c) & 255 with lowbias32(v): v^=v>>16; v*=0x7feb352d; v^=v>>15; v*=0x846ca68b; v^=v>>16 (uint32); ' +
  'k=2 ((x>>4)^(y>>4))&1 ? 230-40c : 20+60c; ' +
  'k=3 ((x*x + 2*y*y + 5000c) >> 6) & 255; ' +
  'network input = v/127.5 - 1 in float32';

export function syntheticImage (k) {
  const img = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE * 3);
  for (let y = 0; y < IMAGE_SIZE; y++)
    for (let x = 0; x < IMAGE_SIZE; x++)
      for (let c = 0; c < 3; c++)
        img[(y * IMAGE_SIZE + x) * 3 + c] = syntheticPixel(k, y, x, c);
  return img;
}

// safetensors: u64 LE header length, JSON header (padded with spaces to a
// multiple of 8), then the raw little-endian data. Written to a temporary
// name and renamed so a reader never sees half a file.
export function writeSafetensors (file, tensors, metadata) {
  const header = {};
  if (metadata)
    header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32' || !(t.data instanceof Float32Array))
      throw new Error(`${name}: only F32 tensors are written`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length)
      throw new Error(`${name}: shape ${t.shape} does not hold ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + n * 4] };
    offset += n * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBuf = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + jsonBuf.length + offset);
  out.writeBigUInt64LE(BigInt(jsonBuf.length), 0);
  jsonBuf.copy(out, 8);
  let pos = 8 + jsonBuf.length;
  for (const [, t] of tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (!littleEndian())
      throw new Error('big-endian hosts are not supported');
    bytes.copy(out, pos);
    pos += bytes.length;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, out);
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  return out.length;
}

function littleEndian () {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
