/**
 * Making sure a layer's qcow2 file exists in the store: reuse it when it
 * does, otherwise convert it under the layer's lock, so processes sharing
 * the store convert it once.
 */

import { mkdir, rm, stat } from "node:fs/promises";

import type { ResolvedLayer } from "../image/types.js";
import { publishFile, temporaryPathFor } from "../store/atomic.js";
import type { ConversionParameters } from "../store/parameters.js";
import type { LayerRecord } from "../store/records.js";
import type { Store } from "../store/store.js";
import { convertLayer } from "./convert.js";
import type { LayerState } from "./types.js";

export interface EnsureLayerOptions {
  signal?: AbortSignal;
  onState?: (state: LayerState, bytesDone?: number) => void;
}

export interface EnsuredLayer {
  record: LayerRecord;
  file: string;
  /** True when this call converted the layer; false when it was in the store. */
  converted: boolean;
}

export async function ensureLayer(
  store: Store,
  parameters: ConversionParameters,
  parametersId: string,
  layer: ResolvedLayer,
  parentChainId: string | null,
  options: EnsureLayerOptions = {},
): Promise<EnsuredLayer> {
  const file = store.layerFile(parametersId, layer.chainId);
  const existing = await store.readLayer(parametersId, layer.chainId);
  if (existing) {
    options.onState?.("cached");
    return { record: existing, file, converted: false };
  }

  options.onState?.("waiting");
  return store.withLayerLock(parametersId, layer.chainId, async () => {
    // Another process may have converted it while this one waited.
    const converted = await store.readLayer(parametersId, layer.chainId);
    if (converted) {
      options.onState?.("cached");
      return { record: converted, file, converted: false };
    }

    options.onState?.("converting", 0);
    const record = await convertAndPublish(store, parameters, parametersId, layer, parentChainId, file, options);
    options.onState?.("done");
    return { record, file, converted: true };
  });
}

async function convertAndPublish(
  store: Store,
  parameters: ConversionParameters,
  parametersId: string,
  layer: ResolvedLayer,
  parentChainId: string | null,
  file: string,
  options: EnsureLayerOptions,
): Promise<LayerRecord> {
  await mkdir(store.layerFolder(parametersId), { recursive: true });
  const temporary = temporaryPathFor(file);
  try {
    await convertLayer(
      {
        layerFile: temporary,
        backingFile: parentChainId === null ? null : store.layerFile(parametersId, parentChainId),
        allowedDir: store.layerFolder(parametersId),
        parameters,
        chainId: layer.chainId,
        layer,
      },
      { signal: options.signal, onProgress: (bytesDone) => options.onState?.("converting", bytesDone) },
    );
    await publishFile(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }

  const record: LayerRecord = {
    chainId: layer.chainId,
    diffId: layer.diffId,
    parentChainId,
    parametersId,
    parameters,
    fileBytes: (await stat(file)).blocks * 512,
    createdAt: new Date().toISOString(),
  };
  await store.writeLayerRecord(record);
  return record;
}
