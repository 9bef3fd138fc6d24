// tfjs-reference.mjs — runs the ORIGINAL nsfwjs Keras model with TensorFlow.js
// (pure-JS CPU backend, offline) on the synthetic golden inputs and writes the
// tap outputs: tests/golden/mobilenet_v2_tfjs.safetensors (global-average-
// pooled taps, committed) and tests/golden/tmp/mobilenet_v2_tfjs_block10.safetensors
// (full block_10 maps, not committed). tests/golden/mobilenet_v2_ref.py
// compares its torch forward pass of the converted weights with both, which
// checks dequantization, layouts, padding and input scaling end to end.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  loadSource, writeSafetensors, syntheticImage, TAPS, IMAGE_SIZE, NUM_SYNTHETIC, SYNTHETIC_DOC,
  SOURCE_PACKAGE, SOURCE_DIR,
} from './mobilenet-v2-common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = path.join(here, '..', '..', 'tests', 'golden');

await tf.setBackend('cpu');
const src = loadSource();
const model = await tf.loadLayersModel(tf.io.fromMemory({
  modelTopology: src.topology,
  weightSpecs: src.weightSpecs,
  weightData: src.weightData.buffer.slice(src.weightData.byteOffset,
                                          src.weightData.byteOffset + src.weightData.byteLength),
}));
const taps = tf.model({
  inputs: model.inputs,
  outputs: TAPS.map(([, layer]) => model.getLayer(layer).output),
});

const n = NUM_SYNTHETIC;
const pixels = new Uint8Array(n * IMAGE_SIZE * IMAGE_SIZE * 3);
for (let k = 0; k < n; k++)
  pixels.set(syntheticImage(k), k * IMAGE_SIZE * IMAGE_SIZE * 3);
const x = tf.tidy(() => tf.tensor4d(pixels, [n, IMAGE_SIZE, IMAGE_SIZE, 3], 'int32')
  .toFloat().div(127.5).sub(1));
const outs = taps.predict(x);

const pooled = [];
let block10 = null;
for (let i = 0; i < TAPS.length; i++) {
  const [name] = TAPS[i];
  const o = outs[i];
  const p = tf.mean(o, [1, 2]);
  pooled.push([`${name}.pooled`, { dtype: 'F32', shape: p.shape, data: await p.data() }]);
  if (name === 'block_10') {
    if (o.shape.join() !== [n, 14, 14, 96].join())
      throw new Error(`block_10 output shape ${o.shape}`);
    block10 = [[`${name}.output`, { dtype: 'F32', shape: o.shape, data: await o.data() }]];
  }
}

const meta = {
  format: 'dcr-mobilenet-v2-b10-golden',
  producer: `data/models/tfjs-reference.mjs: @tensorflow/tfjs ${tf.version.tfjs} (${tf.getBackend()} backend) ` +
            `running ${SOURCE_PACKAGE}@${src.version} ${SOURCE_DIR} as shipped`,
  inputs: SYNTHETIC_DOC,
  images: String(n),
  taps: JSON.stringify(Object.fromEntries(TAPS)),
  pooled: 'mean over H and W of each tap output (NHWC), [images, channels]',
  block_10_output_shape: '[14, 14, 96]',
};
mkdirSync(path.join(golden, 'tmp'), { recursive: true });
const f1 = path.join(golden, 'mobilenet_v2_tfjs.safetensors');
const f2 = path.join(golden, 'tmp', 'mobilenet_v2_tfjs_block10.safetensors');
console.log(`${f1}: ${writeSafetensors(f1, pooled, meta)} bytes`);
console.log(`${f2}: ${writeSafetensors(f2, block10, meta)} bytes`);
