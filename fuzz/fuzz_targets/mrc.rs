//! MRC reader: never panics on any bytes; what opens reads as a volume and image by image.
#![no_main]

use cryomotion::io::mrc::MrcReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = MrcReader::from_bytes(data.to_vec(), "fuzz.mrc") {
        // bound the work: the header may announce a huge map that the data does not back
        if reader.header().data_bytes() > 1 << 24 {
            return;
        }
        let volume = reader.read_volume().expect("data length was checked on open");
        assert_eq!(volume.data.len(), volume.shape.iter().product::<usize>());
        let [nx, ny] = reader.image_shape();
        let mut image = vec![0.0; nx * ny];
        for k in 0..reader.image_count().min(4) {
            let _ = reader.read_image(k, &mut image);
        }
    }
});
