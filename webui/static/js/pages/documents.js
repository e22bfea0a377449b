// Documents: the vector stores (list, create, delete) and, at #/documents/<id>, one store with
// drag-and-drop uploads that show their progress, search over its chunks, and its files.
import { html } from "htm/preact";
import { StoreList } from "../documents/store-list.js";
import { StoreView } from "../documents/store-view.js";

export default function DocumentsPage({ path = [] }) {
  const storeId = path[0];
  return storeId ? html`<${StoreView} storeId=${storeId} key=${storeId} />` : html`<${StoreList} />`;
}
