/**
 * Progress of a pull, reported per layer: bytes verified so far, the
 * overall rate, and how many layers are done.
 */

import type { Descriptor } from "./manifest.js";

export interface PullProgress {
  /** Position of the layer in the manifest, from 0. */
  layerIndex: number;
  digest: string;
  /** Bytes of this layer received and hashed so far. */
  bytesDone: number;
  /** Size of this layer from the manifest, in bytes. */
  bytesTotal: number;
  /** True once this layer is verified and in the cache. */
  layerDone: boolean;
  /** True when the layer was already cached, or shared with another download in this process. */
  cached: boolean;
  layersDone: number;
  layersTotal: number;
  /** Bytes of all layers received so far, cached ones included. */
  totalBytesDone: number;
  totalBytes: number;
  /** Average download rate since the pull's first layer started, in bytes per second. */
  bytesPerSecond: number;
}

/** Shortest interval between two progress events for one layer, in milliseconds. */
const MIN_INTERVAL_MS = 100;

export class ProgressTracker {
  private readonly layers: readonly Descriptor[];
  private readonly listener: ((event: PullProgress) => void) | undefined;
  private readonly bytesDone: number[];
  private readonly lastEvent: number[];
  private readonly totalBytes: number;
  private readonly startedAt = Date.now();
  private downloadedBytes = 0;
  private layersDone = 0;

  constructor(layers: readonly Descriptor[], listener?: (event: PullProgress) => void) {
    this.layers = layers;
    this.listener = listener;
    this.bytesDone = layers.map(() => 0);
    this.lastEvent = layers.map(() => 0);
    this.totalBytes = layers.reduce((sum, layer) => sum + layer.size, 0);
  }

  /** Records that layer `index` has `bytes` verified bytes; emits at most one event per interval. */
  update(index: number, bytes: number): void {
    this.downloadedBytes += bytes - this.bytesDone[index]!;
    this.bytesDone[index] = bytes;
    const now = Date.now();
    if (now - this.lastEvent[index]! < MIN_INTERVAL_MS) return;
    this.lastEvent[index] = now;
    this.emit(index, false, false);
  }

  /** Records that layer `index` is in the cache and always emits an event. */
  finish(index: number, cached: boolean): void {
    const size = this.layers[index]!.size;
    if (!cached) this.downloadedBytes += size - this.bytesDone[index]!;
    this.bytesDone[index] = size;
    this.layersDone += 1;
    this.emit(index, true, cached);
  }

  private emit(index: number, layerDone: boolean, cached: boolean): void {
    if (this.listener === undefined) return;
    const elapsedS = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const layer = this.layers[index]!;
    this.listener({
      layerIndex: index,
      digest: layer.digest,
      bytesDone: this.bytesDone[index]!,
      bytesTotal: layer.size,
      layerDone,
      cached,
      layersDone: this.layersDone,
      layersTotal: this.layers.length,
      totalBytesDone: this.bytesDone.reduce((sum, bytes) => sum + bytes, 0),
      totalBytes: this.totalBytes,
      bytesPerSecond: Math.round(this.downloadedBytes / elapsedS),
    });
  }
}
