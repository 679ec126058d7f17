import Foundation
import MisalignCore




