import { host } from "./host.js";
export const fetch = (request) => host().fetch(request);
