// The installed models (GET /api/tags), shared by the Library, the chat's model picker and
// Discover; refreshed after downloads, copies, imports and deletes.
import { signal } from '@preact/signals';
import { getJson, type TagModel } from './api';

export const models = signal<TagModel[]>([]);
export const modelsError = signal<string | null>(null);

export async function refreshModels(): Promise<void> {
  try {
    const r = await getJson<{ models: TagModel[] }>('/api/tags');
    models.value = [...r.models].sort((a, b) => a.name.localeCompare(b.name));
    modelsError.value = null;
  } catch (e) {
    modelsError.value = (e as Error).message;
  }
}
