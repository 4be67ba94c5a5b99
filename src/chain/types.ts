/** Types shared by createChain, the layer conversion worker and the CLI. */

import type { ContainerConfig } from "../image/types.js";
import type { PullProgress } from "../registry/progress.js";

export interface ChainResult {
  /** The reference as given. */
  reference: string;
  /** `os/arch[/variant]` of the image used. */
  platform: string;
  /** Path of the new writable qcow2 overlay: the guest's root disk. */
  disk: string;
  /** Store id of the overlay, for `resetOverlay` and `deleteOverlay`. */
  overlayId: string;
  /** Files the overlay is backed by, bottom to top: the chain the VMM opens, less the overlay. */
  chain: string[];
  /** Every layer's file, bottom to top; equal to `chain` unless `maxDepth` merged the top layers. */
  layerFiles: string[];
  /** Chain IDs of the layers, bottom to top. */
  chainIds: string[];
  /** Entrypoint, Cmd, Env, WorkingDir, User and the rest of the image config's `config`. */
  imageConfig: ContainerConfig;
  manifestDigest: string;
  configDigest: string;
  /** Virtual size of the disk and of the ext4 filesystem in it, in bytes. */
  virtualSize: number;
  fsType: "ext4";
}

export type LayerState = "cached" | "waiting" | "converting" | "done";

export type ChainProgress =
  | { type: "resolved"; reference: string; manifestDigest: string; layers: number }
  | {
      type: "layer";
      index: number;
      count: number;
      chainId: string;
      state: LayerState;
      /** Uncompressed tar bytes applied so far. */
      bytesDone?: number;
      bytesTotal?: number;
    }
  | ({ type: "download" } & PullProgress)
  | { type: "overlay"; disk: string };
