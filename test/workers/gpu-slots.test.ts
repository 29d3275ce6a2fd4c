import { parseSlots } from '../../workers/gpu';

test.each([
  ['0', ['0']],
  ['0,1', ['0', '1']],
  ['0-1,2-3', ['0,1', '2,3']],
  ['cpu', ['']],
])('--gpu-slots %s gives each slot its CUDA_VISIBLE_DEVICES %j', (spec, expected) => {
  expect(parseSlots(spec).map((s) => s.cudaVisibleDevices)).toEqual(expected);
});

test('a malformed slot list is refused with the bad part named', () => {
  expect(() => parseSlots('0,gpu1')).toThrow(/"gpu1"/);
});
