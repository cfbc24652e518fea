/** Saving and loading state dicts (safetensors). */
export {
  saveFile,
  saveFileAsync,
  loadFile,
  loadFileAsync,
  loadFileWithMetadata,
  readHeader,
  loadUrl,
  serialize,
  serializeAsync,
  deserialize,
  deserializeWithMetadata,
  SafetensorsError,
  MAX_HEADER_SIZE,
  ALIAS_PREFIX,
} from './safetensors';
export type { SaveOptions, LoadOptions, LoadResult, SafetensorsHeader, TensorInfo, SafetensorsDtype } from './safetensors';
