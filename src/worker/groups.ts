// Expert groups as shown live with the run driver (src/run/groups.ts); the page's panels read them here.
export { binarySpec, displayGroups, rangeText, tokenGroupShares, withDisplayGroups } from '../run/groups';
